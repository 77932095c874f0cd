"""What dbt and Dagster users browse: every next-track dbt model's columns and types in
Dagster's catalog, read from enforced dbt contracts in the manifest (no warehouse connection at
definition time), the raw source with its columns in `dbt docs generate`, and `make docs`: every
source, the serving tables' and the user-items ones included, served on 127.0.0.1."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.sources import ingest
from ml.sources.canonical import CANONICAL_SCHEMA
from ml.sources.interactions import ingest_interactions
from ml.sources.synthetic import SyntheticSpec
from tests.servers import free_port, server
from tests.test_dbt import own_dbt_artifacts

REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_COLUMNS = {
    "row_id": "BIGINT",
    "user_id": "VARCHAR",
    "artist": "VARCHAR",
    "track": "VARCHAR",
    "playlist": "VARCHAR",
}


def test_dbt_models_carry_column_names_and_types_in_dagster(prepared_dbt_project):
    from orchestration.definitions import defs

    manifest = json.loads(Path(prepared_dbt_project.manifest_path).read_text())
    models = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["fqn"][1] == "next_track"
        and node["config"]["materialized"] != "ephemeral"  # no asset, and no contract possible
    }
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert len(models) == 7 and set(models) <= set(specs)
    for name, node in models.items():
        assert node["config"]["contract"]["enforced"], f"{name}: contract not enforced"
        value = specs[name].metadata["dagster/column_schema"]
        columns = {column.name: column.type for column in getattr(value, "schema", value).columns}
        assert "?" not in columns.values(), f"{name}: columns without a type: {columns}"
        assert columns == {c: info["data_type"] for c, info in node["columns"].items()}
    splits = specs["playlist_splits"].metadata["dagster/column_schema"]
    splits = {c.name: c.type for c in getattr(splits, "schema", splits).columns}
    assert splits["tracks"] == "varchar[]" and splits["split_bucket"] == "integer"


def test_dbt_docs_list_the_raw_source_with_its_columns(tmp_path):
    raw = tmp_path / "data" / "raw" / "playlist_events.parquet"
    raw.parent.mkdir(parents=True)
    rows = [(1, "u", "Artist", "Title", "p")]
    pq.write_table(pa.Table.from_pylist(
        [dict(zip(CANONICAL_SCHEMA.names, row, strict=True)) for row in rows], CANONICAL_SCHEMA
    ), raw)  # fmt: skip
    target = tmp_path / "target"
    env = {**os.environ, **own_dbt_artifacts(tmp_path / "data")}
    dbt = ["dbt", "--project-dir", "dbt_project", "--profiles-dir", "profiles"]
    # As a user does: a build registers the raw views (the on-run-start hook), then the docs.
    for command in (
        ["build", "--select", "base_playlist_events"],
        ["docs", "generate", "--target-path", str(target)],
    ):
        done = subprocess.run(
            [dbt[0], *command, *dbt[1:]],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:]
    catalog = json.loads((target / "catalog.json").read_text())
    source = catalog["sources"]["source.next_track.raw.playlist_events"]
    columns = {name: column["type"] for name, column in source["columns"].items()}
    assert columns == RAW_COLUMNS
    manifest = json.loads((target / "manifest.json").read_text())
    documented = manifest["sources"]["source.next_track.raw.playlist_events"]["columns"]
    assert {name: c["data_type"].upper() for name, c in documented.items()} == RAW_COLUMNS


SERVING_AND_USER_ITEMS_SOURCES = {
    "source.next_track.serving_next_track.track_recommendations": "model_version",
    "source.next_track.serving_user_items.user_recommendations": "based_on",
    "source.next_track.raw_user_items.interactions": "timestamp",
    "source.next_track.raw_user_items.items": "genres",
}


def test_make_docs_serves_every_source_with_its_columns_on_localhost(tmp_path):
    """A next-track build, then interactions ingested (no user-items build yet) and no serving
    table written: `make docs` still catalogs every source, the serving tables' and the
    user-items ones, and serves the site on 127.0.0.1."""
    data = tmp_path / "data"
    ingest(None, data / "raw" / "playlist_events.parquet", synthetic=SyntheticSpec(300))
    env = {**os.environ, **own_dbt_artifacts(data)}
    build = subprocess.run(
        ["dbt", "build", "--project-dir", "dbt_project", "--profiles-dir", "profiles"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:]
    ingest_interactions(data / "raw" / "playlist_events.parquet", data / "raw")
    port = free_port()
    dry_run = subprocess.run(
        ["make", "-n", "-C", str(REPO_ROOT), "docs", f"DOCS_PORT={port}"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert f"--host 127.0.0.1 --port {port}" in dry_run.stdout
    log = tmp_path / "make-docs.log"
    command = ["make", "-C", str(REPO_ROOT), "docs", f"DOCS_PORT={port}"]
    with server(command, f"http://127.0.0.1:{port}/catalog.json", log, env):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/catalog.json") as response:
            catalog = json.load(response)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html") as response:
            assert response.status == 200
    sources = catalog["sources"]
    assert "source.next_track.raw.playlist_events" in sources
    for source, column in SERVING_AND_USER_ITEMS_SOURCES.items():
        assert column in sources.get(source, {}).get("columns", {}), (source, sorted(sources))
