"""The Dagster instance of DAGSTER_HOME, opened by `make run` (and the tests' runs).

Two processes creating a fresh DAGSTER_HOME's databases at the same moment leave them unusable
("table runs already exists", or two alembic heads that no later process gets past:
dagster#27390), so opening is serialised by a lock file in DAGSTER_HOME.
"""

import os
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from orchestration.locks import file_lock


def open_instance(python_log_level: str | None = None) -> dg.DagsterInstance:
    """With ``python_log_level``, the instance's Python log level for this run: a step process
    announces itself (STEP_WORKER_STARTED, a DEBUG event) through Dagster's default console
    before the run's loggers exist. Every Dagster event still reaches the run's event log."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        return dg.DagsterInstance.get()  # raises Dagster's own error naming the setting
    with file_lock(Path(home) / ".instance.lock"):
        if python_log_level is None:
            return dg.DagsterInstance.get()
        # InstanceRef is not exported by dagster; it is how an instance gets config overrides
        # that step processes inherit (the ref travels with the run).
        ref = InstanceRef.from_dir(
            home, overrides={"python_logs": {"python_log_level": python_log_level}}
        )
        return dg.DagsterInstance.from_ref(ref)
