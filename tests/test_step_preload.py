"""The forkserver that step processes fork from imports, once, what every step would import."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from orchestration.settings import STEP_PRELOAD_MODULES

PROBE = """
import json, multiprocessing, sys

def imported(names):
    return [name for name in names if name in sys.modules]

if __name__ == "__main__":
    from orchestration.run import start_step_forkserver
    from orchestration.settings import STEP_PRELOAD_MODULES

    start_step_forkserver()
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        print(json.dumps(pool.apply(imported, (STEP_PRELOAD_MODULES + ["sqlalchemy", "alembic"],))))
"""


def test_every_preloaded_module_exists() -> None:
    # multiprocessing skips a preload it cannot import without a word: a module renamed by a
    # Dagster or MLflow upgrade would quietly bring back the per-step imports.
    for name in STEP_PRELOAD_MODULES:
        importlib.import_module(name)


def test_a_step_process_starts_with_them_imported(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported == [*STEP_PRELOAD_MODULES, "sqlalchemy", "alembic"]
