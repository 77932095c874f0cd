"""The path UI users take: `dagster dev` with separate run processes, a full materialization
launched through GraphQL as the UI's "Materialize all" does, the inbox sensor picking up a real
file exactly once, and the asset graph rendered in a real (headless Chromium) browser."""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ml.evaluation.report import display_number
from ml.registry import CHAMPION
from tests.configs import SMALL_GRID
from tests.graphql_client import (
    materializations,
    materialize_all,
    run_status,
    run_times,
    runs_tagged,
    terminate_run,
    wait_for_run,
)
from tests.servers import free_port, server

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INBOX_TAG = "next_track/inbox_file"
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
# The flags that keep headless Chromium off the (closed) network and quiet. The window is wide
# enough for the next_track group's 19 assets: in a narrower one the graph is scaled down until
# labels over ~17 characters are cut in the middle ("raw_playli…_events"); since the baselines
# follow the rules grid (one column more), 3200 px was too narrow.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=20000", "--window-size=4800,2400",
]  # fmt: skip


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory, prepared_dbt_project):
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port, mlflow_port = free_port(), free_port()
    url, mlflow_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{mlflow_port}"
    env = {
        "DAGSTER_HOME": str(home),
        "NEXT_TRACK_DATA_DIR": str(data),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data}/mlflow/mlflow.db",
        "NEXT_TRACK_INBOX_SETTLE_SECONDS": "2",
        # What `make ui PORT=... MLFLOW_PORT=...` exports: links between the UIs follow them.
        "NEXT_TRACK_DAGSTER_UI": url,
        "NEXT_TRACK_MLFLOW_UI": mlflow_url,
    }
    # What `make ui` runs. Started from a script, dg dev (dagster dev under it) ignores INT/TERM
    # unless their default is restored.
    command = [
        "env", "--default-signal=INT,TERM", shutil.which("dg"), "dev",
        "--target-path", str(REPO_ROOT), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env["VIRTUAL_ENV"] = str(Path(shutil.which("dg")).parents[1])
    with server(command, f"{url}/server_info", root / "dagster_dev.log", env):
        yield {
            "url": url,
            "mlflow_port": mlflow_port,
            "mlflow_url": mlflow_url,
            "data": data,
            "log": root / "dagster_dev.log",
            **env,
        }


@pytest.fixture(scope="module")
def materialized(dagster_ui):
    config = {
        "ops": {"raw_playlist_events": {"config": {"synthetic_playlists": 1200}}, **SMALL_GRID}
    }
    # "Materialize all" in the next_track group's view (tests/test_user_items_pipeline.py
    # materializes the user_items group).
    run_id = materialize_all(dagster_ui["url"], config, group="next_track")
    status = wait_for_run(dagster_ui["url"], run_id)
    assert status == "SUCCESS", dagster_ui["log"].read_text()[-5000:]
    return run_id


def test_materialize_all_from_the_ui_path(dagster_ui, materialized):
    url = dagster_ui["url"]
    for asset in (
        "raw_playlist_events",
        "playlist_splits",
        "next_track_dataset",
        "next_track_registered_model",
    ):
        assert materialized in {m["run_id"] for m in materializations(url, [asset])}, asset
    from orchestration.assets.next_track.registry import MODEL_NAME

    registered = materializations(url, ["next_track_registered_model"])[0]
    assert registered["alias"] == CHAMPION and registered["model_version"] == "1"
    client = MlflowClient(dagster_ui["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert client.get_run(champion.run_id).data.tags["dagster_run_id"] == materialized
    assert "Could not set lock" not in dagster_ui["log"].read_text()


def test_overlapping_runs_queue_instead_of_colliding(dagster_ui, materialized):
    """Two runs launched together (a schedule's and a UI launch, say): the instance runs one at
    a time (dagster.yaml: max_concurrent_runs 1), so both succeed, one after the other. Ingest
    only: what waits is the run, whatever it selects (test_faults has runs waiting for pools)."""
    url = dagster_ui["url"]
    config = {"ops": {"raw_playlist_events": {"config": {"synthetic_playlists": 300}}}}
    first, second = (materialize_all(url, config, only=[["raw_playlist_events"]]) for _ in range(2))
    assert [wait_for_run(url, first), wait_for_run(url, second)] == ["SUCCESS", "SUCCESS"]
    (start_1, end_1), (start_2, end_2) = run_times(url, first), run_times(url, second)
    assert end_1 <= start_2 or end_2 <= start_1, "runs overlapped"
    assert "Could not set lock" not in dagster_ui["log"].read_text()


def test_inbox_file_is_ingested_once_and_only_once(dagster_ui, materialized, shared_data):
    url, inbox = dagster_ui["url"], dagster_ui["data"] / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    name = "mpd.slice.0-999.json"
    shutil.copy(shared_data / "mpd_sample" / name, inbox / name)
    deadline = time.monotonic() + 180
    while not (runs := runs_tagged(url, INBOX_TAG, name)) and time.monotonic() < deadline:
        time.sleep(2)
    assert len(runs) == 1, "the sensor did not request a run for the inbox file"
    run_id = runs[0]["runId"]

    def ingests() -> list[dict]:
        return [m for m in materializations(url, ["raw_playlist_events"]) if m["run_id"] == run_id]

    # The ingest is what this test is about: the retrain behind it (the default grid) is
    # stopped once the file is ingested, as a user would in the UI.
    while not ingests() and run_status(url, run_id) not in FINISHED and time.monotonic() < deadline:
        time.sleep(2)
    if run_status(url, run_id) not in FINISHED:
        terminate_run(url, run_id)
    wait_for_run(url, run_id)
    time.sleep(25)  # more sensor ticks: the same file must not start another run
    assert len(runs_tagged(url, INBOX_TAG, name)) == 1
    ingested = ingests()
    assert len(ingested) == 1
    assert ingested[0]["source"] == str(inbox / name)
    assert ingested[0]["format"] == "mpd_json" and ingested[0]["dagster/row_count"] == 1448


def rendered_dom(page: str, profile: Path) -> str:
    """The page's DOM once headless Chromium has run its scripts."""
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium not installed (.ci/run installs Debian's chromium)",
)
def test_asset_graph_renders_in_a_real_browser(dagster_ui, materialized, tmp_path):
    assert CHROMIUM, "CI must have Chromium: .ci/run installs it"
    groups = {
        "next_track": [
            "raw_playlist_events", "stg_playlist_events", "int_playlist_sequences",
            "playlist_splits", "dim_tracks", "dataset_stats",
            "next_track_dataset", "rung_references", "track_embeddings",
            "sequential_rules_candidates",
            "neighbourhood_candidates", "slist_candidates",
            "next_track_baseline_candidates", "next_track_candidate_metrics",
            "next_track_selected_model", "next_track_registered_model",
        ],
    }  # fmt: skip
    for group, assets in groups.items():
        page = f"{dagster_ui['url']}/locations/next_track/asset-groups/{group}"
        dom = rendered_dom(page, tmp_path / group)
        for asset in assets:
            assert asset in dom, f"{asset} not rendered on {page}"


@pytest.fixture(scope="module")
def mlflow_ui(tiny_registered_model, tmp_path_factory):
    """`mlflow ui` as `make mlflow-ui` starts it, on the tracking store the model is in."""
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow_ui") / "mlflow_ui.log"
    command = [
        shutil.which("mlflow"), "ui", "--backend-store-uri", tiny_registered_model["tracking_uri"],
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/health", log):
        yield url


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium not installed (.ci/run installs Debian's chromium)",
)
def test_mlflow_experiment_opens_on_training_runs(mlflow_ui, tiny_registered_model, tmp_path):
    """The experiment link Dagster shows opens the runs, not MLflow 3's GenAI overview (its UI
    ignores the experiment's kind tag and opens GenAI unless the link names the mode); a
    registered version's page shows its description and tags."""
    from orchestration.resources import MlflowResource

    assert CHROMIUM, "CI must have Chromium: .ci/run installs it"
    link = MlflowResource(ui_url=mlflow_ui).experiment_url(tiny_registered_model["experiment_id"])
    dom = rendered_dom(link, tmp_path / "experiment")
    assert "tiny pipeline" in dom, f"the pipeline run is not listed on {link}"
    assert "Detect Issues" not in dom and "Token Usage" not in dom  # the GenAI overview
    name, version = tiny_registered_model["name"], tiny_registered_model["version"]
    page = f"{mlflow_ui}/#/models/{name}/versions/{version}"
    dom = rendered_dom(page, tmp_path / "version")
    assert "Tiny test model: sequential rules on 8 tracks." in dom
    assert "sequential_rules:tiny" in dom  # the candidate tag


@pytest.fixture(scope="module")
def linked_mlflow_ui(dagster_ui, materialized):
    """`make mlflow-ui MLFLOW_PORT=...` on the port the run's links were written for."""
    data = dagster_ui["data"]
    command = [
        shutil.which("mlflow"), "ui", "--backend-store-uri", dagster_ui["MLFLOW_TRACKING_URI"],
        "--default-artifact-root", (data / "mlflow" / "artifacts").as_uri(),
        "-h", "127.0.0.1", "-p", str(dagster_ui["mlflow_port"]),
    ]  # fmt: skip
    url = dagster_ui["mlflow_url"]
    with server(command, f"{url}/health", data.parent / "linked_mlflow_ui.log"):
        yield url


# The link in a Dagster metadata row: the row's label cell, then the anchor beside it.
METADATA_LINK = """(() => {{
  const label = [...document.querySelectorAll('td')].find(td => td.innerText.trim() === {label});
  const link = label && label.parentElement.querySelector('a[href^="http"]');
  return link ? link.href : null;
}})()"""
# Every metadata table's header cells and rows, as text.
METADATA_TABLES = """[...document.querySelectorAll('table')].map(t => ({
  header: [...t.querySelectorAll(':scope > thead > tr > th')].map(th => th.innerText.trim()),
  rows: [...t.querySelectorAll(':scope > tbody > tr')].map(tr =>
    [...tr.querySelectorAll(':scope > td')].map(td => td.innerText.trim())),
}))"""
PLOT = """(() => {{
  const img = document.querySelector('img[alt={alt}]');
  return img && img.complete ? {{src: img.src, width: img.naturalWidth}} : null;
}})()"""


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Chromium not installed (.ci/run installs Debian's chromium)",
)
def test_links_between_the_uis_and_the_candidate_table_in_a_real_browser(
    dagster_ui, materialized, linked_mlflow_ui, tmp_path
):
    """On ports other than the defaults: Dagster's mlflow_run link opens that MLflow run, whose
    dagster_run tag opens the Dagster run that trained it; next_track_registered_model opens its
    MLflow model version; next_track_candidate_metrics shows the candidate table (every name as
    written) and the hit rate@K plot without a click."""
    from orchestration.assets.next_track.registry import MODEL_NAME
    from tests.browser import Browser

    assert CHROMIUM, "CI must have Chromium: .ci/run installs it"
    dagster, mlflow_url = dagster_ui["url"], linked_mlflow_ui
    client = MlflowClient(dagster_ui["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    browser = Browser(CHROMIUM, tmp_path / "chromium")
    try:
        browser.open(f"{dagster}/assets/next_track_registered_model")
        run_link = browser.wait_for(METADATA_LINK.format(label='"mlflow_run"'))
        version_link = browser.wait_for(METADATA_LINK.format(label='"mlflow_model_version"'))
        assert run_link.startswith(f"{mlflow_url}/#/experiments/")

        browser.open(run_link)  # Dagster -> MLflow: the run that holds the registered model
        browser.wait_for(f"document.body.innerText.includes({champion.run_id!r})")
        tag = browser.wait_for(
            "(document.body.innerText.match("
            f"/{re.escape(dagster).replace('/', '[/]')}[/]runs[/][0-9a-f-]{{36}}/) || [null])[0]"
        )
        assert tag == f"{dagster}/runs/{materialized}"

        browser.open(tag)  # MLflow -> Dagster: the run that trained it
        browser.wait_for(f"document.body.innerText.includes({materialized[:8]!r})")
        browser.wait_for("document.body.innerText.includes('next_track_registered_model')")
        assert browser.url().startswith(f"{dagster}/runs/{materialized}")

        browser.open(version_link)
        assert version_link == f"{mlflow_url}/#/models/{MODEL_NAME}/versions/{champion.version}"
        browser.wait_for(f"document.body.innerText.includes('Version {champion.version}')")
        source_run = client.get_run(champion.run_id).info.run_name  # "selected: <candidate>"
        browser.wait_for(f"document.body.innerText.includes({source_run!r})")

        browser.open(f"{dagster}/assets/next_track_candidate_metrics")
        columns = ["candidate", "family", "role", "hit_rate_at_100", "queries", "fit_seconds"]
        tables = browser.wait_for(
            f"(t => t.length ? t : null)(({METADATA_TABLES})"
            f".filter(t => {columns!r}.every(c => t.header.includes(c))))"
        )
        (table,) = tables
        handover = dagster_ui["data"] / "runs" / materialized / "handover"
        rows = json.loads((handover / "next_track_candidate_metrics.json").read_text())["rows"]
        name_cells = [row[table["header"].index("candidate")] for row in table["rows"]]
        assert name_cells == [row["candidate"] for row in rows]
        assert any("*" in name for name in name_cells), "no hybrid in the table"
        shown = table["rows"][0][table["header"].index("hit_rate_at_100")]
        assert float(shown) == display_number(rows[0]["hit_rate_at_100"]) and len(shown) <= 6
        plot = browser.wait_for(PLOT.format(alt='"hit_rate_at_k_plot"'))
        assert plot["src"].startswith(f"{mlflow_url}/get-artifact?") and plot["width"] > 0
    finally:
        browser.close()
