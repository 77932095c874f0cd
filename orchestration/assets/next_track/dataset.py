"""next_track_dataset: the warehouse split encoded once per run for every candidate to share."""

from dataclasses import dataclass, replace

import dagster as dg
import numpy as np
from dagster_dbt import get_asset_key_for_model

from ml.datasets.checks import next_track_problem
from ml.datasets.evaluation_split import EvaluationSplit
from ml.datasets.next_track import NextTrackData, read_next_track_data
from ml.warehouse import read_table_rows
from orchestration.assets.dbt import next_track_dbt_models, warehouse_for_run
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.config import DatasetConfig
from orchestration.steps import DatasetStep, refuse, run_lineage
from orchestration.storage import RunStorage

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
    # validation queries the finalists are scored on (0 = all: handles saved before it)
    finalist_sample: int = 0

    @property
    def grid_train_rows(self) -> int:
        """The train rows a grid unit fits on."""
        return self.summary["train_rows"]

    def load(self, storage: RunStorage) -> NextTrackData:
        return NextTrackData.load(storage.stage(self.key))

    def sampled_validation(self, data: NextTrackData) -> EvaluationSplit:
        """The validation queries candidates are scored on: drawn here only, so every grid step
        and the selection score the same queries."""
        return data.validation.take(self.validation_sample_rows(data))

    def validation_sample_rows(self, data: NextTrackData) -> np.ndarray:
        """The rows of the validation split ``sampled_validation`` keeps, ascending."""
        return data.validation.sample_rows(self.validation_sample, self.seed)

    def selection_data(self, data: NextTrackData) -> tuple[NextTrackData, np.ndarray]:
        """``data`` with its validation split cut to the finalists' sample, and the rows of the
        validation sample within it. The finalists' sample holds the validation sample and a
        seeded draw of the other queries, ``finalist_sample`` in all, in their order."""
        sample = self.validation_sample_rows(data)
        n = len(data.validation)
        if not self.finalist_sample or self.finalist_sample >= n:
            return data, sample
        others = np.setdiff1d(np.arange(n), sample)
        drawn = np.random.default_rng([self.seed, 1]).choice(
            len(others), max(self.finalist_sample - len(sample), 0), replace=False
        )
        rows = np.sort(np.concatenate([sample, others[drawn]]))
        return replace(data, validation=data.validation.take(rows)), np.searchsorted(rows, sample)


@dg.asset(
    deps=[PLAYLIST_SPLITS, DIM_TRACKS, BUILD_RECORD],
    kinds={"numpy", "parquet"},
    description="playlist_splits and dim_tracks encoded with the train split's catalogue "
    "(memory-mapped arrays in the run's folder), checked against this run's own ingest.",
)
def next_track_dataset(
    context: dg.AssetExecutionContext, config: DatasetConfig, storage: RunStorage
) -> DatasetHandle:
    run_id = context.run.run_id
    step = DatasetStep(storage, run_id, warehouse_for_run(storage, run_id))
    build = read_table_rows(step.warehouse, "next_track_build")[0]
    ingested, source = run_lineage(context, raw_playlist_events.key)
    refuse(_other_data(ingested, build, storage.location(step.warehouse_key)))
    data = read_next_track_data(step.warehouse)
    key = step.save("dataset", {"": data}, next_track_problem(data))
    summary, seconds = data.summary(), step.seconds()
    sample = min(config.validation_sample or len(data.validation), len(data.validation))
    finalists = min(config.finalist_sample or len(data.validation), len(data.validation))
    context.add_output_metadata(
        step.metadata(
            key,
            {
                **{k: v for k, v in summary.items() if not isinstance(v, dict)},
                "validation_sample": sample,
                "finalist_sample": max(finalists, sample),
                "seconds": seconds,
                "rows_per_second": summary["train_rows"] / seconds if seconds else 0.0,
                "raw_fingerprint": build["raw_fingerprint"],
            },
        )
    )
    return DatasetHandle(
        key=key,
        fingerprint=data.fingerprint,
        raw_fingerprint=build["raw_fingerprint"],
        source=source,
        warehouse_key=step.warehouse_key,
        sample_percent=build["sample_percent"],
        split_salt=build["split_salt"],
        validation_sample=sample,
        validation_queries=len(data.validation),
        seed=config.seed,
        summary=summary,
        finalist_sample=max(finalists, sample),
    )


def _other_data(ingested: dict, build: dict, warehouse: str) -> str | None:
    """Why the warehouse cannot be used: built from other raw data than this run ingested."""
    if not ingested or ingested.get("raw_fingerprint") == build["raw_fingerprint"]:
        return None
    return (
        f"{warehouse} was built from raw data {build['raw_fingerprint']} ({build['raw_path']}), "
        f"but this run ingested {ingested.get('raw_fingerprint')}: materialize the dbt models "
        "in this run too, so it trains on the data it ingested"
    )
