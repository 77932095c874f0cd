"""`make run` parses the dbt project only when something the manifest is parsed from changed."""

import json
import shutil
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.project import GENERATED, prepare
from orchestration.settings import DBT_PROFILES_DIR, DBT_PROJECT_DIR


def nodes(manifest: Path) -> str:
    """The manifest without what every parse changes: its metadata and creation times."""
    document = json.loads(manifest.read_text())
    document.pop("metadata")
    text = json.dumps(document, sort_keys=True, indent=0)
    return "\n".join(line for line in text.splitlines() if '"created_at"' not in line)


def test_the_manifest_is_parsed_again_only_when_its_inputs_change(tmp_path, monkeypatch):
    project_dir, profiles_dir = tmp_path / "dbt_project", tmp_path / "profiles"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(DBT_PROFILES_DIR, profiles_dir)
    project = DbtProject(project_dir=project_dir, profiles_dir=profiles_dir)
    monkeypatch.delenv("NEXT_TRACK_WAREHOUSE", raising=False)
    monkeypatch.setenv("NEXT_TRACK_DATA_DIR", str(tmp_path / "data"))
    manifest = Path(project.manifest_path)

    assert prepare(project) and manifest.exists()
    assert not list(manifest.parent.glob(".parse-*"))  # parsed aside, renamed into place
    parsed_at, parsed = manifest.stat().st_mtime_ns, nodes(manifest)
    assert not prepare(project)
    assert manifest.stat().st_mtime_ns == parsed_at

    # Another data folder: nothing to parse, and a parse would write the same manifest.
    monkeypatch.setenv("NEXT_TRACK_DATA_DIR", str(tmp_path / "another"))
    assert not prepare(project)
    project.preparer.prepare(project)  # as another command (`dbt parse` by hand) would
    assert nodes(manifest) == parsed
    assert prepare(project)  # a manifest this did not parse is parsed again
    assert not prepare(project)

    model = next(project_dir.glob("models/**/*.sql"))
    for edited, comment in ((model, "-- edited"), (profiles_dir / "profiles.yml", "# edited")):
        edited.write_text(f"{edited.read_text()}\n{comment}\n")
        assert prepare(project)
        assert not prepare(project)

    # The warehouse's file name is the database every relation of the manifest names.
    monkeypatch.setenv("NEXT_TRACK_WAREHOUSE", str(tmp_path / "other.duckdb"))
    assert prepare(project)
    assert '"database": "other"' in manifest.read_text()


def test_a_dbt_command_spawns_no_version_check_and_opens_no_adapter(
    prepared_dbt_project, tmp_path, monkeypatch
):
    """The definitions' dbt resource runs a command with dbt's version read from the installed
    dbt-core, the same as the executable's (dagster-dbt otherwise spawns ``dbt --version``
    first), and without an adapter opened in this process (whose macro loading dagster-dbt
    otherwise does every time)."""
    import subprocess

    import dagster_dbt.core.resource

    from orchestration.definitions import defs

    dbt = defs.resources["dbt"]
    said = subprocess.run([dbt.dbt_executable, "--version"], capture_output=True, text=True)

    def spawned(*args, **kwargs):
        raise AssertionError(f"dagster-dbt spawned {args}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", spawned)
    invocation = dbt.cli(["ls", "--resource-type", "model", "--quiet"], target_path=tmp_path)
    invocation.wait()
    assert invocation.is_successful() and invocation.adapter is None
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert "model.next_track.playlist_splits" in written["nodes"]
    assert f"installed: {dbt._cli_version}" in said.stdout


def test_a_dbt_elsewhere_is_asked_its_version(prepared_dbt_project, tmp_path, monkeypatch):
    """A dbt executable not beside this interpreter may be another install: its version is the
    one it reports (dagster-dbt's own check), not the installed dbt-core's."""
    import dagster_dbt.core.resource

    from orchestration.project import DbtCli
    from orchestration.settings import DBT_EXECUTABLE

    elsewhere = tmp_path / "bin" / "dbt"
    elsewhere.parent.mkdir()
    elsewhere.write_text('#!/bin/sh\necho "Core:\n  - installed: 1.10.9"\n')
    elsewhere.chmod(0o755)
    asked = []
    check_output = dagster_dbt.core.resource.check_output
    monkeypatch.setattr(
        dagster_dbt.core.resource,
        "check_output",
        lambda args, **kw: asked.append(args) or check_output(args, **kw),
    )
    assert (
        str(DbtCli(project_dir=prepared_dbt_project, dbt_executable=str(elsewhere))._cli_version)
        == "1.10.9"
    )
    assert asked == [[str(elsewhere), "--version"]]
    beside = DbtCli(project_dir=prepared_dbt_project, dbt_executable=DBT_EXECUTABLE)
    assert beside._cli_version.major == 1 and len(asked) == 1
