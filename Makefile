# The README's commands. Each bootstraps .venv (tools/bootstrap_env.sh) on first use.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: env test test-slow lint format demo clean

env:
	@bash tools/bootstrap_env.sh

lint: env
	$(PY) -m ruff check mmbackbones tools tests configs setup.py
	$(PY) -m ruff format --check mmbackbones tools tests configs setup.py

format: env
	$(PY) -m ruff check --fix mmbackbones tools tests configs setup.py
	$(PY) -m ruff format mmbackbones tools tests configs setup.py

# Fast suite (slow tests excluded) plus the docstring examples of the package;
# pytest's "no tests collected" (exit 5) fails too. MMBACKBONES_REQUIRE_REFERENCES=1: a
# parity test skipped because timm / torchvision / onnxruntime cannot be imported fails
# the run (tests/conftest.py); by hand, without the variable, it is only a skip.
test: lint
	MMBACKBONES_REQUIRE_REFERENCES=1 $(PY) -m pytest -m "not slow" tests mmbackbones --doctest-modules $(PYTEST_ARGS)

test-slow: env
	MMBACKBONES_REQUIRE_REFERENCES=1 $(PY) -m pytest -m slow $(PYTEST_ARGS)

# Train configs/rexnet_fasterrcnn_fpn.py on the built-in data, evaluate, plot.
demo: env
	$(PY) tools/demo.py

clean:
	rm -rf work_dirs data/builtin
