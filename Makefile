# Run `make help` for the list of targets. Every target creates the virtualenvs it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SCAN_VENV := .venv-scan
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
# The Lambda runtime's Python, for `sam build` (template.yaml names python3.13): the first python3.13 on
# PATH that runs (pyenv's shim is on PATH even when 3.13 is not an active version, and then fails), else
# pyenv's own install of it.
RUNTIME_PYTHON := python3.13
BUILD_PYTHON_DIR ?= $(shell for dir in $$(type -ap $(RUNTIME_PYTHON) | xargs -r -n1 dirname) $$HOME/.pyenv/versions/3.13*/bin; do \
	"$$dir/$(RUNTIME_PYTHON)" -c "" >/dev/null 2>&1 && { echo "$$dir"; break; }; done)
# What a build is made of: `make invoke` builds again when any of it is newer than the last build.
BUILD_SOURCES := template.yaml $(shell find functions layers -type f \( -name '*.py' -o -name '*.txt' -o -name '*.json' \
	-o -name Makefile \) -not -path '*/__pycache__/*' 2>/dev/null)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= ap-southeast-1
# The samconfig.toml section `make deploy` reads and writes: one per stage (docs/operations.md).
CONFIG_ENV ?= default

$(BIN)/.installed: requirements-dev.txt layers/dependencies/requirements.txt pyproject.toml local/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e . -e ./local
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

$(SCAN_VENV)/.installed: requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/pip install --quiet -r requirements-scan.txt
	touch $@

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: venv
venv: $(BIN)/.installed $(SAM_VENV)/.installed ## Create both virtualenvs (project, SAM CLI)

.PHONY: run
run: $(BIN)/.installed ## The whole pipeline on this machine (moto + simulator); options: make run ARGS="--count 20 --dialect generic"
	$(BIN)/python -m devstack.run $(ARGS)

.PHONY: stack
stack: $(BIN)/.installed ## make run, then keep the local stack up for other programs (Ctrl-C stops it)
	$(BIN)/python -m devstack.run --keep-running $(ARGS)

.PHONY: invoke
invoke: $(BIN)/.installed $(SAM_VENV)/.installed .aws-sam/build/template.yaml ## Invoke a built function (built again if sources changed): make invoke FUNCTION=send_sms EVENT=events/send_sms_batch.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo 'usage: make invoke FUNCTION=send_sms EVENT=events/<file>.json'; exit 2; }
	$(BIN)/python -m devstack.invoke $(FUNCTION) $(EVENT) $(ARGS)

.aws-sam/build/template.yaml: $(BUILD_SOURCES)
	$(MAKE) build

.PHONY: test
test: $(BIN)/.installed ## Run the test suite (unit, integration with moto and the simulator, template)
	$(BIN)/pytest

.PHONY: lint
lint: $(BIN)/.installed $(SAM_VENV)/.installed scan ## ruff, ruff format --check, mypy, sam validate (+ --lint), cfn-lint, scan
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(BIN)/cfn-lint template.yaml

.PHONY: scan
scan: $(SCAN_VENV)/.installed ## checkov on the template, bandit on the code: 0 findings (each skip says why, where it is)
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(SCAN_VENV)/bin/bandit --quiet --configfile pyproject.toml --recursive layers functions local

.PHONY: format
format: $(BIN)/.installed ## Format and auto-fix the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build (uses the runtime's Python, no container needed)
	@test -n "$(BUILD_PYTHON_DIR)" || { echo "$(RUNTIME_PYTHON), the Lambda runtime's Python, is neither on PATH nor in pyenv."; \
		echo "Install it (pyenv install 3.13, or your system's python3.13 package, e.g. apt install python3.13) and run make build again."; exit 1; }
	PATH="$(BUILD_PYTHON_DIR):$$PATH" $(SAM) build --template template.yaml

.PHONY: deploy
deploy: build ## sam deploy (guided the first time, then from samconfig.toml); CONFIG_ENV=prod for another stage's section
	@if grep -q '^\[$(CONFIG_ENV).deploy' samconfig.toml 2>/dev/null && [ -z "$(GUIDED)" ]; then \
		$(SAM) deploy --config-env $(CONFIG_ENV); else $(SAM) deploy --guided --config-env $(CONFIG_ENV); fi

.PHONY: bench
bench: $(BIN)/.installed ## Benchmarks: print ratios against their targets; ARGS="--dialect generic" for the other dialect
	$(BIN)/python -m devstack.bench $(ARGS)

.PHONY: docs
docs: $(BIN)/.installed ## Write the generated parts of the docs: the README's settings table, docs/benchmarks.md's figures
	$(BIN)/python -m devstack.docs

.PHONY: soak
soak: $(BIN)/.installed ## A campaign with OTPs at MiM's limits, faults, 4 consumer processes; make soak ARGS="--count 2000"
	$(BIN)/python -m devstack.soak $(ARGS)

.PHONY: redrive
redrive: $(BIN)/.installed ## Dead letters back to their queues: make redrive STACK=sms-gateway [ARGS=--dry-run]
	@test -n "$(STACK)" || { echo 'usage: make redrive STACK=<stack name> [ARGS="--dry-run --limit 10"]'; exit 2; }
	$(BIN)/sms-redrive --stack-name $(STACK) $(ARGS)

.PHONY: simulator
simulator: $(BIN)/.installed ## Run the MiM SMS simulator on 127.0.0.1:8900
	$(BIN)/python -m mimsms_simulator --port 8900

.PHONY: clean
clean: ## Remove build output and caches (keeps the virtualenvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## Also remove the virtualenvs
	rm -rf $(VENV) $(SAM_VENV) .venv-lambda
