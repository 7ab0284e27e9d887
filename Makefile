# The two commands of the quick start: `make demo` and `make test`. Everything else is a helper.
.PHONY: env lts-envs demo test test-fast test-lts zip clean

# Tests that `make test-fast` leaves out (see tests/conftest.py for the markers).
FAST_SKIP = not slow and not blender and not golden and not cluster and not lts

env:
	@bash scripts/setup_env.sh

# One environment per Blender LTS release (constraints-lts.txt): .venv-bpy42, .venv-bpy45.
lts-envs:
	@bash scripts/setup_lts_envs.sh

demo: env
	@.venv/bin/python scripts/demo.py $(ARGS)

test: env lts-envs
	@.venv/bin/python -m pytest -q tests

test-fast: env
	@.venv/bin/python -m pytest -q -m "$(FAST_SKIP)" tests

# The compatibility test alone: the scripted path on Blender 4.2 LTS and 4.5 LTS.
test-lts: env lts-envs
	@.venv/bin/python -m pytest -q -m lts tests

zip: env
	@.venv/bin/python scripts/build_extension.py

clean:
	rm -rf dist demo_output .pytest_cache
