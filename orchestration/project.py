"""The dbt project as Dagster sees it. No @dbt_assets here, so that
``dagster-dbt project prepare-and-package --file orchestration/project.py`` can build the manifest
before the definitions (which need it at import) are loaded."""

import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from orchestration.settings import DBT_EXECUTABLE, DBT_PROFILES_DIR, DBT_PROJECT_DIR, DBT_TARGET

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROFILES_DIR, target=DBT_TARGET
)
# Folders of the project that dbt writes, not reads.
GENERATED = ("target", "logs", "dbt_packages")
INPUTS_FILE = "manifest_inputs.sha256"  # beside the manifest: what it was parsed from
LOCK_FILE = "manifest_inputs.lock"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# dbt-adapters holds the macros every manifest lists (dbt's global project).
DBT_PACKAGES = ("dbt-core", "dbt-adapters", "dbt-duckdb")
# Folders the project reads and the manifest does not hold (the warehouse's file name, which
# names the database, comes from NEXT_TRACK_WAREHOUSE or is fixed): each run may have its own.
FOLDER_VARIABLES = ("NEXT_TRACK_DATA_DIR", "NEXT_TRACK_SERVING_DIR")


class DbtCli(DbtCliResource):
    """dagster-dbt's dbt resource without two things it does before every dbt command, in the
    step's process, that this project does not use: run ``dbt --version`` in a subprocess (the
    dbt beside this interpreter is the installed dbt-core, whose version is known here), and
    load dbt's macros to open an adapter, which only ``fetch_row_counts`` and
    ``fetch_column_metadata`` read (the row counts are taken after dbt exits, in
    orchestration/assets/dbt.py). Each took seconds per dbt command (docs/benchmarks.md)."""

    @cached_property
    def _cli_version(self) -> Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return Version(version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def prepare(project: DbtProject = dbt_project) -> bool:
    """Parse ``project`` into its manifest (``dbt parse``), unless this manifest was parsed
    here from the same inputs: the files of the project and of its profiles, dbt's version,
    and the environment variables dbt and the project read (``DBT_*``, ``NEXT_TRACK_*`` but
    the data folders, which the manifest does not hold: a run in a folder of its own parses
    nothing again). A manifest another command wrote since (``dbt build`` by hand) is parsed
    again. True when it parsed."""
    manifest = Path(project.manifest_path)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    stamp = manifest.with_name(INPUTS_FILE)
    # Checked, parsed and stamped under one lock: two runs at once never stamp each other's
    # manifest. Not project.preparer.prepare, whose guard skips the parse when another process
    # wrote the manifest meanwhile, whatever that one was parsed from.
    with manifest.with_name(LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        inputs = manifest_inputs(project)
        if stamp.exists() and stamp.read_text() == stamped(inputs, manifest):
            return False
        stamp.unlink(missing_ok=True)  # a parse that fails leaves no stamp to trust
        parse_atomically(project, manifest)
        stamp.write_text(stamped(inputs, manifest))
    return True


def parse_atomically(project: DbtProject, manifest: Path) -> None:
    """``dbt parse`` into a scratch folder (from the last parse's partial-parse state), then the
    new manifest renamed over the old: a process loading the definitions meanwhile (a step, a
    Celery worker) reads the one or the other, never a half-written file, as it would when dbt
    wrote it in place."""
    target = manifest.parent
    with tempfile.TemporaryDirectory(dir=target, prefix=".parse-") as scratch:
        partial = target / PARTIAL_PARSE_FILE
        if partial.exists():
            shutil.copy2(partial, scratch)
        dbt = DbtCli(project_dir=project, dbt_executable=DBT_EXECUTABLE)
        dbt.cli(["parse", "--quiet"], target_path=Path(scratch)).wait()
        for name in (PARTIAL_PARSE_FILE, manifest.name):
            os.replace(Path(scratch) / name, target / name)


def stamped(inputs: str, manifest: Path) -> str:
    """The inputs' digest and the manifest file's identity: size and modification time."""
    if not manifest.exists():
        return ""
    status = manifest.stat()
    return f"{inputs} {status.st_size} {status.st_mtime_ns}\n"


def manifest_inputs(project: DbtProject) -> str:
    digest = hashlib.sha256()
    for package in DBT_PACKAGES:
        digest.update(f"{package}=={version(package)}\n".encode())
    for name in sorted(os.environ):
        if name.startswith(("DBT_", "NEXT_TRACK_")) and name not in FOLDER_VARIABLES:
            digest.update(f"{name}={os.environ[name]}\n".encode())
    project_dir = Path(project.project_dir)
    # dbt's own folders are skipped, not walked: every run adds files to target/.
    read = [path for path in project_dir.iterdir() if path.name not in GENERATED]
    folders = [*read, Path(project.profiles_dir)]
    files = [*read, *(path for folder in folders if folder.is_dir() for path in folder.rglob("*"))]
    for path in sorted(set(files)):
        if path.is_file():
            digest.update(f"{path}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# Under `dagster dev` only (`make ui`): parse when the SQL changed, so edits show up without a
# manual step. Not dagster-dbt's prepare_if_dev, which parses on every import of this module and
# writes the manifest in place.
if dbt_project.preparer.using_dagster_dev():
    prepare()
