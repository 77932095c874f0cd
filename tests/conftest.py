"""Test session set-up: every location the code writes to points into one temporary folder.

These variables are read at import by orchestration.settings, so they are set before any
project module is imported.
"""

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

SESSION_DIR = Path(tempfile.mkdtemp(prefix="next-track-tests-"))
os.environ["NEXT_TRACK_DATA_DIR"] = str(SESSION_DIR / "data")
os.environ["DAGSTER_HOME"] = str(SESSION_DIR / "dagster_home")
SESSION_MLFLOW = f"sqlite:///{SESSION_DIR}/data/mlflow/mlflow.db"
os.environ["MLFLOW_TRACKING_URI"] = SESSION_MLFLOW
# dagster-dbt runs the `dbt` executable: the one installed beside this interpreter.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
(SESSION_DIR / "dagster_home").mkdir(parents=True)
(SESSION_DIR / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def session_mlflow_store():
    """Every test starts on the session's MLflow store: a test that points MLflow elsewhere
    (mlflow.set_tracking_uri also sets the environment variable servers inherit) is undone."""
    import mlflow

    yield
    os.environ["MLFLOW_TRACKING_URI"] = SESSION_MLFLOW
    mlflow.set_tracking_uri(SESSION_MLFLOW)


@pytest.fixture(autouse=True)
def default_sigterm():
    """SIGTERM at its default before and after every test (so also for the next module's
    fixtures). A pytest-xdist worker ignores SIGINT, and an in-process Dagster run maps SIGTERM
    to SIGINT's handler, so after one the worker ignored SIGTERM too, and every process a later
    test started inherited that: `multiprocessing`'s pool workers then outlived their pool's
    terminate (a hang), a stray process outlived `down`'s SIGTERM."""

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    restore()
    yield
    restore()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA} (see DESIGN.md)")
    return SHARED_DATA


def pytest_sessionstart(session: pytest.Session) -> None:
    """The dbt manifest the definitions load is built once, before any test (and, under
    pytest-xdist, by the controller before its workers start): a worker re-writing
    dbt_project/target/manifest.json while another's run reads it would be a torn read."""
    if hasattr(session.config, "workerinput"):
        return
    from orchestration.project import prepare

    prepare()


@pytest.fixture(scope="session")
def prepared_dbt_project():
    from orchestration.project import dbt_project

    return dbt_project


TINY_TRACKS = (
    [("Artist A", f"Song {i}") for i in range(3)]
    + [("Artist B", "Song 3")]
    + [("Artist C", f"Song {i}") for i in range(4, 8)]
)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A sequential-rules bundle over the eight TINY_TRACKS, saved as the pipeline saves one."""
    import numpy as np
    import pyarrow as pa

    from ml.catalogue import Catalogue
    from ml.recommenders.sequential_rules import SequentialRules
    from ml.sequences import Sequences
    from ml.serving.bundle import save_bundle

    keys = [f"{artist}|||{title}" for artist, title in TINY_TRACKS]
    playlists = [[0, 1, 2, 3], [1, 2, 3, 4], [0, 2, 4, 5], [5, 6, 7], [4, 5, 6, 7], [2, 3, 6]]
    train = Sequences.from_lists(playlists)
    model = SequentialRules.baseline(len(keys))
    model.fit(train)
    catalogue = Catalogue(
        pa.table(
            {
                "key": keys,
                "artist": [artist for artist, _ in TINY_TRACKS],
                "title": [title for _, title in TINY_TRACKS],
                "train_count": np.bincount(train.items, minlength=len(keys)).astype(np.int64),
            }
        )
    )
    return save_bundle(
        tmp_path_factory.mktemp("tiny") / "bundle", model, catalogue, {"test": "tiny"}
    )


@pytest.fixture(scope="session")
def tiny_registered_model(tiny_bundle, tmp_path_factory) -> dict:
    """The tiny bundle logged and registered the way the pipeline does it
    (ml.registry.log_and_register), without running the pipeline: for the serving, make-target
    and MLflow UI tests. Its own model name, so the pipeline's stays untouched."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    from ml.registry import CHAMPION, LoggedModel, ModelCard, ensure_experiment, log_and_register
    from ml.serving import next_track_pyfunc

    root = tmp_path_factory.mktemp("tiny_model")
    keys = [f"{artist}|||{title}" for artist, title in TINY_TRACKS]
    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    name = "next-track-tiny"
    experiment_id = ensure_experiment(tracking_uri, name, (root / "artifacts").as_uri())
    client = MlflowClient(tracking_uri)
    parent = client.create_run(experiment_id, run_name="tiny pipeline", tags={"kind": "pipeline"})
    run_id, version = log_and_register(
        client,
        experiment_id,
        parent.info.run_id,
        LoggedModel(
            card=ModelCard(
                name, "next_track", "Tiny test model.", "nothing", "test_hit_rate_at_100"
            ),
            pyfunc_file=Path(next_track_pyfunc.__file__),
            bundle_dir=tiny_bundle,
            signature=next_track_pyfunc.SIGNATURE,
            example_input=pd.DataFrame({"tracks": [keys[:2]]}),
            run_name="selected: sequential_rules:tiny",
            params={"family": "sequential_rules"},
            metrics={"test_hit_rate_at_100": 1.0},
            tags={"kind": "selected", "candidate": "sequential_rules:tiny"},
        ),
    )
    client.update_model_version(name, version, "Tiny test model: sequential rules on 8 tracks.")
    client.set_model_version_tag(name, version, "candidate", "sequential_rules:tiny")
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_terminated(parent.info.run_id)
    return {
        "name": name,
        "version": version,
        "run_id": run_id,
        "experiment_id": experiment_id,
        "keys": keys,
        "tracking_uri": tracking_uri,
    }
