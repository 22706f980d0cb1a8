# Run `make help` for the list of targets. Every target creates the virtualenvs it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
# The Lambda runtime's Python, for `sam build` (template.yaml names python3.13).
# pyenv's shim for python3.13 exists even when 3.13 is not the active version, so look for the real one first.
BUILD_PYTHON_DIR ?= $(shell ls -d $$HOME/.pyenv/versions/3.13*/bin 2>/dev/null | tail -n1 || dirname "$$(command -v python3.13)")
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= ap-southeast-1

$(BIN)/.installed: requirements-dev.txt layers/sms_common/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
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
invoke: $(BIN)/.installed $(SAM_VENV)/.installed ## Invoke a built function: make invoke FUNCTION=send_sms EVENT=events/send_sms_batch.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo 'usage: make invoke FUNCTION=send_sms EVENT=events/<file>.json'; exit 2; }
	@test -d .aws-sam/build || $(MAKE) build
	$(BIN)/python -m devstack.invoke $(FUNCTION) $(EVENT) $(ARGS)

.PHONY: test
test: $(BIN)/.installed ## Run the test suite (unit, integration with moto and the simulator, template)
	$(BIN)/pytest

.PHONY: lint
lint: $(BIN)/.installed $(SAM_VENV)/.installed ## ruff, ruff format --check, mypy, sam validate (+ --lint), cfn-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(BIN)/cfn-lint template.yaml

.PHONY: format
format: $(BIN)/.installed ## Format and auto-fix the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: build
build: $(SAM_VENV)/.installed ## sam build (uses the runtime's Python, no container needed)
	@test -x "$(BUILD_PYTHON_DIR)/python3.13" || { echo "python3.13 not found: install it (e.g. pyenv install 3.13) for sam build"; exit 1; }
	PATH="$(BUILD_PYTHON_DIR):$$PATH" $(SAM) build --template template.yaml

.PHONY: deploy
deploy: build ## sam deploy (guided the first time, then from samconfig.toml)
	@if grep -q '^\[default.deploy' samconfig.toml 2>/dev/null && [ -z "$(GUIDED)" ]; then \
		$(SAM) deploy; else $(SAM) deploy --guided; fi

.PHONY: bench
bench: $(BIN)/.installed ## Benchmarks: print ratios against their targets; ARGS="--dialect generic" for the other dialect
	$(BIN)/python -m devstack.bench $(ARGS)

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
