"""The Dagster instance of DAGSTER_HOME, opened by `make run` (and the tests' runs).

Two processes creating a fresh DAGSTER_HOME's databases at the same moment leave them unusable
("table runs already exists", or two alembic heads that no later process gets past:
dagster#27390), so opening is serialised by a lock file in DAGSTER_HOME.
"""

import os
from pathlib import Path

import dagster as dg

from orchestration.resources import file_lock


def open_instance() -> dg.DagsterInstance:
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():
        return dg.DagsterInstance.get()  # raises Dagster's own error naming the setting
    with file_lock(Path(home) / ".instance.lock"):
        return dg.DagsterInstance.get()
