"""The ingest and dataset assets materialized alone, as hooli-data-eng-pipelines tests its
assets: on an ephemeral instance, with a run store of its own (a dataset's holding a warehouse
the test built with plain dbt on small data). The metadata and handles count what the files and
the warehouse hold, what they wrote is in the run store, and a bad input fails the asset with
the message that names it."""

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from ml.sources import SourceError, ingest
from ml.sources.interactions import INTERACTIONS_FILE, ingest_interactions
from ml.sources.run_files import file_fingerprint
from ml.sources.synthetic import SyntheticSpec
from orchestration.assets.next_track.dataset import DatasetHandle, next_track_dataset
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.assets.user_items.dataset import UserItemsDatasetHandle, user_items_dataset
from orchestration.assets.user_items.ingest import raw_interactions
from orchestration.settings import RAW_EVENTS_KEY, USER_ITEMS_WAREHOUSE_KEY, WAREHOUSE_KEY
from orchestration.storage import RunStorage
from tests.test_dbt import dbt_build, query
from tests.test_user_items_dbt import movielens_warehouse  # noqa: F401 (a fixture, reused)

# `make run`'s synthetic generator at the scale of tests/test_faults.py's small runs.
SYNTHETIC = SyntheticSpec(playlists=300, seed=5)


@pytest.fixture(scope="module")
def synthetic_warehouse(tmp_path_factory) -> Path:
    """A data folder holding the next-track warehouse plain `dbt build` makes of SYNTHETIC."""
    data_dir = tmp_path_factory.mktemp("synthetic")
    ingest(None, data_dir / "raw" / "playlist_events.parquet", synthetic=SYNTHETIC)
    result = dbt_build(data_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    return data_dir


def run_store(tmp_path: Path, warehouse: Path, key: str, *change: str) -> RunStorage:
    """A run store holding a copy of ``warehouse`` published as ``key``, with ``change`` (SQL)
    applied to the copy."""
    shutil.copy(warehouse, tmp_path / key)
    with duckdb.connect(str(tmp_path / key)) as connection:
        for statement in change:
            connection.execute(statement)
    return RunStorage(url=tmp_path.as_uri())


def materialize_alone(
    asset: dg.AssetsDefinition, storage: RunStorage, config: dict | None = None
) -> dg.ExecuteInProcessResult:
    """``asset`` alone; ``config``: its run config."""
    return dg.materialize(
        [asset],
        resources={"storage": storage},
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {asset.node_def.name: {"config": config}}} if config else None,
    )


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (materialization,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == [asset]
    ]
    return {k: v.value for k, v in materialization.materialization.metadata.items()}


def test_raw_playlist_events_alone_publishes_what_it_ingested(tmp_path):
    storage = RunStorage(url=tmp_path.as_uri())
    config = {"synthetic_playlists": SYNTHETIC.playlists, "synthetic_seed": SYNTHETIC.seed}
    result = materialize_alone(raw_playlist_events, storage, config)
    metadata = metadata_of(result, "raw_playlist_events")
    published = tmp_path / RAW_EVENTS_KEY
    assert metadata["dagster/row_count"] == pq.read_metadata(published).num_rows > 0
    assert metadata["raw_key"] == f"runs/{result.run_id}/{RAW_EVENTS_KEY}"
    assert (tmp_path / metadata["raw_key"]).read_bytes() == published.read_bytes()
    assert metadata["raw_fingerprint"] == file_fingerprint(published)
    assert metadata["format"] == "synthetic" and metadata["stale_temporaries_removed"] == 0


def test_raw_playlist_events_alone_fails_with_the_sources_message(tmp_path):
    source = tmp_path / "playlists.json"
    source.write_text('{"not": "a playlist file"}')
    with pytest.raises(SourceError) as expected:
        ingest(source, tmp_path / "expected.parquet")
    with pytest.raises(dg.Failure) as failure:
        materialize_alone(
            raw_playlist_events, RunStorage(url=tmp_path.as_uri()), {"source": str(source)}
        )
    assert failure.value.description == str(expected.value)
    assert not (tmp_path / RAW_EVENTS_KEY).exists()  # nothing published


def test_raw_interactions_alone_publishes_both_tables(shared_data, tmp_path):
    source = shared_data / "movielens_100k"
    expected = ingest_interactions(source, tmp_path / "expected")
    storage = RunStorage(url=(tmp_path / "store").as_uri())
    result = materialize_alone(raw_interactions, storage, {"source": str(source)})
    interactions = metadata_of(result, "raw_interactions")
    assert interactions["dagster/row_count"] == expected.rows_written == 100_000
    assert (interactions["users"], interactions["items"]) == (expected.users, expected.items)
    assert interactions["lineage"] == interactions["source"] == str(source)
    published = tmp_path / "store" / "raw" / INTERACTIONS_FILE
    assert interactions["raw_fingerprint"] == file_fingerprint(published)
    assert metadata_of(result, "raw_items")["dagster/row_count"] == expected.items


def test_raw_interactions_alone_without_a_source_names_what_to_do(tmp_path):
    storage = RunStorage(url=tmp_path.as_uri())
    with pytest.raises(dg.Failure) as failure:
        materialize_alone(raw_interactions, storage)
    assert failure.value.description == (
        f"{tmp_path / RAW_EVENTS_KEY}: no interactions source; set raw_interactions.config.source, "
        "or materialize raw_playlist_events first to use the playlists"
    )


def split_sizes(data_dir: Path, sql: str) -> dict[str, int]:
    return dict(query(data_dir, sql))


def test_next_track_dataset_alone_encodes_the_warehouse_split(synthetic_warehouse, tmp_path):
    storage = run_store(tmp_path, synthetic_warehouse / "warehouse.duckdb", WAREHOUSE_KEY)
    result = materialize_alone(next_track_dataset, storage)
    handle = result.output_for_node("next_track_dataset")
    assert isinstance(handle, DatasetHandle)
    sizes = split_sizes(
        synthetic_warehouse, "select split, count(*) from playlist_splits group by split"
    )
    assert sizes["train"] > 0 and sizes["validation"] > 0 and sizes["test"] > 0
    assert handle.summary["train_playlists"] == sizes["train"]
    assert handle.summary["validation_queries"] == handle.validation_queries == sizes["validation"]
    assert handle.summary["test_queries"] == sizes["test"]
    ((build_fingerprint,),) = query(
        synthetic_warehouse, "select raw_fingerprint from next_track_build"
    )
    assert (handle.raw_fingerprint, handle.warehouse_key) == (build_fingerprint, WAREHOUSE_KEY)
    assert handle.source == "unknown"  # no ingest on this instance
    assert (tmp_path / handle.key).is_dir() and storage.exists(f"{handle.key}/dataset.json")
    assert handle.load(storage).fingerprint == handle.fingerprint
    metadata = result.asset_materializations_for_node("next_track_dataset")[0].metadata
    assert metadata["dataset"].value == str(tmp_path / handle.key)
    assert metadata["validation_sample"].value == sizes["validation"]  # fewer than the default


def test_the_finalists_sample_holds_the_candidates_sample(synthetic_warehouse, tmp_path):
    storage = run_store(tmp_path, synthetic_warehouse / "warehouse.duckdb", WAREHOUSE_KEY)
    config = {"validation_sample": 20, "finalist_sample": 50}
    handle = materialize_alone(next_track_dataset, storage, config).output_for_node(
        "next_track_dataset"
    )
    data = handle.load(storage)
    assert len(data.validation) > 50
    cut, sample_rows = handle.selection_data(data)
    assert (len(cut.validation), len(sample_rows)) == (50, 20)
    sampled = handle.sampled_validation(data)  # what every grid step scored
    assert cut.validation.take(sample_rows).labels.to_lists() == sampled.labels.to_lists()
    assert cut.validation.take(sample_rows).queries.history.to_lists() == (
        sampled.queries.history.to_lists()
    )
    histories = {tuple(h) for h in data.validation.queries.history.to_lists()}
    assert {tuple(h) for h in cut.validation.queries.history.to_lists()} <= histories
    assert cut.train is data.train and cut.test is data.test  # only validation is cut
    # Re-drawn the same, and all of validation once the sample is as large as the split.
    again, _ = handle.selection_data(data)
    assert again.validation.labels.to_lists() == cut.validation.labels.to_lists()
    whole = replace(handle, finalist_sample=len(data.validation))
    assert whole.selection_data(data)[0] is data


def test_next_track_dataset_alone_refuses_an_empty_validation_split(synthetic_warehouse, tmp_path):
    storage = run_store(
        tmp_path,
        synthetic_warehouse / "warehouse.duckdb",
        WAREHOUSE_KEY,
        "delete from playlist_splits where split = 'validation'",
    )
    ((tests,),) = query(
        synthetic_warehouse, "select count(*) from playlist_splits where split = 'test'"
    )
    message = (
        f"the validation (0) or test ({tests}) split is empty: candidates cannot be compared; "
        "bring more playlists"
    )
    with pytest.raises(dg.Failure) as failure:
        materialize_alone(next_track_dataset, storage)
    assert failure.value.description == message
    assert not list(tmp_path.glob("runs/*/dataset"))  # nothing saved


def test_user_items_dataset_alone_encodes_both_folds(movielens_warehouse, tmp_path):  # noqa: F811
    storage = run_store(
        tmp_path, movielens_warehouse / "warehouse.duckdb", USER_ITEMS_WAREHOUSE_KEY
    )
    result = materialize_alone(user_items_dataset, storage)
    handle = result.output_for_node("user_items_dataset")
    assert isinstance(handle, UserItemsDatasetHandle)
    rows = split_sizes(
        movielens_warehouse, "select split, count(*) from interaction_splits group by split"
    )
    queries = split_sizes(
        movielens_warehouse,
        "select split, count(distinct user_id) from interaction_splits where is_label group by 1",
    )
    validation, test = handle.summary["validation"], handle.summary["test"]
    assert validation["train_rows"] == rows["train"]
    assert test["train_rows"] == rows["train"] + rows["validation"]
    assert (validation["queries"], test["queries"]) == (queries["validation"], queries["test"])
    assert handle.split_method == "time_range" and handle.warehouse_key == USER_ITEMS_WAREHOUSE_KEY
    for fold in ("validation", "test"):
        assert (tmp_path / handle.key / fold).is_dir()
        assert handle.fold(storage, fold).summary() == handle.summary[fold]
    metadata = result.asset_materializations_for_node("user_items_dataset")[0].metadata
    assert metadata["test_queries"].value == queries["test"]
    assert metadata["fingerprint"].value == handle.fingerprint


def test_user_items_dataset_alone_refuses_a_fold_without_users_to_evaluate(
    movielens_warehouse,  # noqa: F811
    tmp_path,
):
    storage = run_store(
        tmp_path,
        movielens_warehouse / "warehouse.duckdb",
        USER_ITEMS_WAREHOUSE_KEY,
        "delete from interaction_splits where split = 'validation'",
    )
    with pytest.raises(dg.Failure) as failure:
        materialize_alone(user_items_dataset, storage)
    assert failure.value.description == (
        "the validation fold has no train rows or no users to evaluate: bring more interactions "
        "or loosen min_user_interactions"
    )
