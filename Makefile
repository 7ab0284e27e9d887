# The two commands of the quick start: `make demo` and `make test`. Everything else is a helper.
.PHONY: env demo test zip clean

env:
	@bash scripts/setup_env.sh

demo: env
	@.venv/bin/python scripts/demo.py $(ARGS)

test: env
	@.venv/bin/python -m pytest -q -p no:cacheprovider tests

zip: env
	@.venv/bin/python scripts/build_extension.py

clean:
	rm -rf dist demo_output .pytest_cache
