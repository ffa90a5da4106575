# Developer and CI entry points. Tests start their own emulators through pytest fixtures.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_FLAGS ?= -q -p no:cacheprovider

.PHONY: install run serve test test-unit test-integration bench fmt-check clean

install: $(VENV)/.installed

# gcloud-tasks-emulator 0.6.2 pins protobuf<5, which conflicts with the protobuf
# that the current Google clients need, so it is installed without dependencies.
# Its imports (grpc, google.cloud.tasks_v2, google.iam.v1, yaml) all come from
# requirements.txt.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps gcloud-tasks-emulator==0.6.2
	touch $@

run: $(VENV)/.installed
	$(PY) -m lib.cli run $(if $(DATA),--data $(DATA)) $(if $(MAIL),--mail $(MAIL))

serve: $(VENV)/.installed
	$(PY) -m lib.cli serve

# checkov pins packages (packaging, a fork of python-hcl2) that break pytest and
# the project's own HCL parser, so it lives in a virtual environment of its own.
CHECKOV_VENV ?= .venv-checkov

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==3.3.30
	touch $@

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(PY) -m pytest tests $(PYTEST_FLAGS)

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit $(PYTEST_FLAGS)

test-integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration $(PYTEST_FLAGS)

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

fmt-check:
	@if command -v terraform >/dev/null 2>&1; then \
		terraform fmt -check -recursive terraform; \
	else \
		echo "terraform not found, skipping fmt-check"; \
	fi

# Removes caches and build output; the virtual environment stays.
clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache build out
