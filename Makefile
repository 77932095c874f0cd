# Thin aliases. The first target that needs it creates .venv and installs the project.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
SOURCE ?=
USE_CASE ?= auto
PLAYLISTS ?= 5000
SAMPLE_PERCENT ?= 100
PORT ?= 3000
MLFLOW_PORT ?= 5000
SERVE_PORT ?= 5001
SERVE_WORKERS ?= 1
# Links between the UIs follow the ports `make ui` and `make mlflow-ui` start them on (unless
# these point elsewhere, e.g. at a shared MLflow server): one setting each, read by the code.
export NEXT_TRACK_DAGSTER_UI ?= http://127.0.0.1:$(PORT)
export NEXT_TRACK_MLFLOW_UI ?= http://127.0.0.1:$(MLFLOW_PORT)

# dbt must be on PATH for dagster-dbt; one data folder for Dagster, dbt and MLflow.
export PATH := $(BIN):$(PATH)
# dg checks that the active environment is the project's.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export DAGSTER_HOME := $(CURDIR)/dagster_home
export NEXT_TRACK_DATA_DIR ?= $(CURDIR)/data

.PHONY: install install-cluster run test lint ui dbt prepare clean cluster-up cluster-down

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.11 on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The cluster profile's packages (Celery, dagster-postgres, dagster-aws, s3fs, SeaweedFS) and
# Debian's redis-server.
$(VENV)/.installed-cluster: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,cluster]'
	touch $@

install-cluster: $(VENV)/.installed-cluster
	@command -v redis-server >/dev/null || { \
		SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

prepare: install
	$(BIN)/python -c 'from orchestration.project import prepare; prepare()' >/dev/null

# PROFILE=cluster: submit to the services `make cluster-up` started (their environment: the
# generated cluster.env, credentials included).
PROFILE ?= embedded
CLUSTER_DIR ?= $(CURDIR)/.cluster
WORKERS ?= 2
run: install
	$(if $(filter cluster,$(PROFILE)),set -a && . "$(CLUSTER_DIR)/cluster.env" && set +a &&) \
	$(BIN)/python -m orchestration.run --source "$(SOURCE)" --playlists $(PLAYLISTS) \
		--sample-percent $(SAMPLE_PERCENT) --use-case $(USE_CASE) --profile $(PROFILE) \
		$(if $(CONFIG),--config "$(CONFIG)")

cluster-up: install-cluster prepare
	$(BIN)/python -m orchestration.cluster up --folder "$(CLUSTER_DIR)" --workers $(WORKERS)

cluster-down: install
	$(BIN)/python -m orchestration.cluster down --folder "$(CLUSTER_DIR)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint install-cluster
	$(BIN)/pytest

# dg dev (what Dagster 1.13 recommends) reads the project from [tool.dg] in pyproject.toml.
ui: prepare
	$(BIN)/dg dev --host 127.0.0.1 --port $(PORT)

dbt: install
	$(BIN)/dbt build --project-dir dbt_project --profiles-dir profiles

# dbt's documentation site on 127.0.0.1:DOCS_PORT: every model and source with its columns (the
# serving tables' and the user-items ones too: selector docs), in its own target folder, so the
# manifest Dagster reads is left alone. Stops with make, as the other servers do.
DOCS_PORT ?= 8080
DOCS_TARGET := $(CURDIR)/dbt_project/target/docs
.PHONY: docs
docs: install
	$(BIN)/dbt docs generate --project-dir dbt_project --profiles-dir profiles --selector docs \
		--target-path "$(DOCS_TARGET)"
	exec $(BIN)/python -m orchestration.foreground $(BIN)/dbt docs serve \
		--project-dir dbt_project --profiles-dir profiles --target-path "$(DOCS_TARGET)" \
		--host 127.0.0.1 --port $(DOCS_PORT) --no-browser

clean:
	rm -rf data dbt_project/target dbt_project/logs

# MLflow: the registry in data/mlflow (sqlite); serving the champion over HTTP.
MLFLOW_TRACKING_URI ?= sqlite:///$(NEXT_TRACK_DATA_DIR)/mlflow/mlflow.db
export MLFLOW_TRACKING_URI
MODEL ?= models:/next-track@champion

.PHONY: mlflow-ui serve bench bench-scale
# Both servers stop with make (SIGINT or SIGTERM to make alone included): see
# orchestration/foreground.py. exec: make's own child is the wrapper, not a shell.
# One uvicorn worker and no job runner (its 7 huey consumers serve GenAI jobs, which this project
# has none of): 4 processes instead of 17 on a 2-core machine. MLFLOW_UI_WORKERS=4 for more.
MLFLOW_UI_WORKERS ?= 1
mlflow-ui: install
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	exec $(BIN)/python -m orchestration.foreground $(BIN)/mlflow ui \
		--backend-store-uri "$(MLFLOW_TRACKING_URI)" \
		--default-artifact-root "file://$(NEXT_TRACK_DATA_DIR)/mlflow/artifacts" \
		-h 127.0.0.1 -p $(MLFLOW_PORT) --workers $(MLFLOW_UI_WORKERS)

serve: install
	exec $(BIN)/python -m orchestration.serve_model --model "$(MODEL)" --port $(SERVE_PORT) \
		--workers $(SERVE_WORKERS)

bench: install
	$(BIN)/python benchmarks/bench_recommenders.py
	$(BIN)/python benchmarks/bench_kaggle_ingest.py

# The whole pipeline on a Kaggle-shaped CSV at FRACTION of Kaggle's scale (SHAPE=mpd: MPD-shaped
# slices at FRACTION of the MPD): seconds and RSS per step.
FRACTION ?= 0.01
SHAPE ?= kaggle
bench-scale: install
	$(BIN)/python benchmarks/bench_scale.py --shape $(SHAPE) --fraction $(FRACTION) \
		$(if $(CONFIG),--config "$(CONFIG)")
