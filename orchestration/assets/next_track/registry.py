"""next_track_registered_model: the selected bundle logged as an MLflow pyfunc, registered as
next-track, and promoted champion or challenger with the reason written on the version."""

import pandas as pd

from ml.evaluation.metrics import served_metrics
from ml.evaluation.selection import REPORTED_METRICS
from ml.serving import next_track_pyfunc
from orchestration.assets.next_track.candidates import EXPERIMENT
from orchestration.assets.next_track.dataset import DatasetHandle
from orchestration.assets.registered_model import registered_model_asset
from orchestration.storage import RunStorage
from orchestration.use_case import UseCase

PROMOTION_K = 100


def pyfunc_hit_rate(model, test_keys, k: int) -> float:
    """Hit rate@k of a loaded next-track pyfunc on the test split's keys (any catalogue)."""
    queries = test_keys.column("query").to_pylist()
    labels = [[label] for label in test_keys.column("label").to_pylist()]
    output = model.predict(pd.DataFrame({"tracks": queries}), params={"k": k})
    return served_metrics(output, "track_key", labels, k)[f"hit_rate_at_{k}"]


def champion_hit_rate(champion, dataset: DatasetHandle, storage: RunStorage) -> float:
    return pyfunc_hit_rate(champion, dataset.load(storage).test_keys, PROMOTION_K)


NEXT_TRACK = UseCase(
    name="next_track",
    experiment=EXPERIMENT,
    model_name="next-track",
    task="Next track of a playlist: given a playlist's tracks (keys `artist|||title` or "
    '"artist - title"), the k tracks most likely to come next, each with artist, title and '
    "score.",
    query_noun="queries",
    promotion_metric=f"hit_rate_at_{PROMOTION_K}",
    reported_metrics=REPORTED_METRICS,
    pyfunc=next_track_pyfunc,
    training_table="playlist_splits",
    rescore=champion_hit_rate,
    fingerprints=lambda dataset: {
        "data_fingerprint": dataset.fingerprint,
        "raw_fingerprint": dataset.raw_fingerprint,
    },
    tag_baselines=True,
    job_description="next-track: ingest, dbt build (write-audit-publish), the candidate grid, "
    "selection, test, registration, the track_recommendations table.",
    schedule_cron="0 4 * * 1",  # Mondays 04:00 UTC
    schedule_description="Re-ingest the default source ($NEXT_TRACK_SOURCE, else synthetic), "
    "rebuild the dbt models, retrain, evaluate, register, refresh track_recommendations.",
)
MODEL_NAME = NEXT_TRACK.model_name
next_track_registered_model = registered_model_asset(NEXT_TRACK, DatasetHandle)
