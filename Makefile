# The two commands of the quick start: `make demo` and `make test`. Everything else is a helper.
.PHONY: env demo test test-fast zip clean

# Tests that `make test-fast` leaves out (see tests/conftest.py for the markers).
FAST_SKIP = not slow and not blender and not golden and not cluster

env:
	@bash scripts/setup_env.sh

demo: env
	@.venv/bin/python scripts/demo.py $(ARGS)

test: env
	@.venv/bin/python -m pytest -q tests

test-fast: env
	@.venv/bin/python -m pytest -q -m "$(FAST_SKIP)" tests

zip: env
	@.venv/bin/python scripts/build_extension.py

clean:
	rm -rf dist demo_output .pytest_cache
