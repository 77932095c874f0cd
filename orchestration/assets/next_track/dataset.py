"""next_track_dataset: the warehouse split encoded once per run for every candidate to share."""

import time
from dataclasses import dataclass

import dagster as dg
import numpy as np
from dagster_dbt import get_asset_key_for_model

from ml.datasets.evaluation_split import EvaluationSplit
from ml.datasets.next_track import NextTrackData, read_next_track_data
from ml.warehouse import read_table_rows
from orchestration.assets.dbt import next_track_dbt_models, warehouse_for_run
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.config import DatasetConfig
from orchestration.lineage import latest_metadata, materialized_in_run
from orchestration.metadata import for_display
from orchestration.settings import WORKER_NAME
from orchestration.storage import RunStorage, run_key

PLAYLIST_SPLITS = get_asset_key_for_model([next_track_dbt_models], "playlist_splits")
DIM_TRACKS = get_asset_key_for_model([next_track_dbt_models], "dim_tracks")
BUILD_RECORD = get_asset_key_for_model([next_track_dbt_models], "next_track_build")


@dataclass
class DatasetHandle:
    """Where a run's encoded dataset lives in the run store, and what it holds."""

    key: str  # the dataset's folder in the run store
    fingerprint: str  # of everything the models see
    raw_fingerprint: str  # of the raw file the warehouse was built from
    source: str  # the data lineage: the ingested source (file path, URL or synthetic spec)
    warehouse_key: str  # the warehouse build it was read from
    sample_percent: float  # the dbt vars that build was made with
    split_salt: str
    validation_sample: int  # validation queries each candidate is scored on
    validation_queries: int
    seed: int
    summary: dict

    def load(self, storage: RunStorage) -> NextTrackData:
        return NextTrackData.load(storage.stage(self.key))

    def sampled_validation(self, data: NextTrackData) -> EvaluationSplit:
        """The validation queries candidates are scored on: drawn here only, so every grid step
        and the selection score the same queries."""
        return data.validation.take(self.validation_sample_rows(data))

    def validation_sample_rows(self, data: NextTrackData) -> np.ndarray:
        """The rows of the validation split ``sampled_validation`` keeps, ascending."""
        return data.validation.sample_rows(self.validation_sample, self.seed)


@dg.asset(
    deps=[PLAYLIST_SPLITS, DIM_TRACKS, BUILD_RECORD],
    group_name="next_track",
    kinds={"numpy", "parquet"},
    description="playlist_splits and dim_tracks encoded with the train split's catalogue "
    "(memory-mapped arrays in the run's folder), checked against this run's own ingest.",
)
def next_track_dataset(
    context: dg.AssetExecutionContext, config: DatasetConfig, storage: RunStorage
) -> DatasetHandle:
    run_id = context.run.run_id
    warehouse_key = warehouse_for_run(storage, run_id)
    warehouse = storage.stage(warehouse_key)
    build = read_table_rows(warehouse, "next_track_build")[0]
    ingested = materialized_in_run(context.instance, raw_playlist_events.key, run_id)
    if ingested and ingested.get("raw_fingerprint") != build["raw_fingerprint"]:
        raise dg.Failure(
            f"{storage.location(warehouse_key)} was built from raw data "
            f"{build['raw_fingerprint']} ({build['raw_path']}), but this run ingested "
            f"{ingested.get('raw_fingerprint')}: materialize the dbt models in this run too, so "
            "it trains on the data it ingested",
            allow_retries=False,
        )
    started = time.perf_counter()
    data = read_next_track_data(warehouse)
    if len(data.train) == 0:
        raise dg.Failure("the train split is empty: nothing to learn from", allow_retries=False)
    if len(data.validation) == 0 or len(data.test) == 0:
        raise dg.Failure(
            f"the validation ({len(data.validation)}) or test ({len(data.test)}) split is empty: "
            "candidates cannot be compared; bring more playlists",
            allow_retries=False,
        )
    key = run_key(run_id, "dataset")
    data.save(storage.writable(key))
    storage.commit(key)
    summary = data.summary()
    seconds = time.perf_counter() - started
    sample = min(config.validation_sample or len(data.validation), len(data.validation))
    source = ingested.get("lineage") or _latest_lineage(context)
    context.add_output_metadata(
        for_display(
            {
                **{k: v for k, v in summary.items() if not isinstance(v, dict)},
                "validation_sample": sample,
                "seconds": seconds,
                "rows_per_second": summary["train_rows"] / seconds if seconds else 0.0,
                "raw_fingerprint": build["raw_fingerprint"],
                "warehouse": storage.location(warehouse_key),
                "dataset": storage.location(key),
                "worker": WORKER_NAME,
            }
        )
    )
    return DatasetHandle(
        key=key,
        fingerprint=data.fingerprint,
        raw_fingerprint=build["raw_fingerprint"],
        source=source,
        warehouse_key=warehouse_key,
        sample_percent=build["sample_percent"],
        split_salt=build["split_salt"],
        validation_sample=sample,
        validation_queries=len(data.validation),
        seed=config.seed,
        summary=summary,
    )


def _latest_lineage(context: dg.AssetExecutionContext) -> str:
    return latest_metadata(context.instance, raw_playlist_events.key, "lineage") or "unknown"
