"""Asset checks beyond dbt's tests (those come from dagster-dbt)."""

import dagster as dg

from orchestration.assets.next_track.dataset import DatasetHandle, next_track_dataset
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.assets.next_track.registry import next_track_registered_model
from orchestration.assets.registration import RegisteredModel
from orchestration.metadata import for_display

MIN_KNOWN_LABELS = 0.5


@dg.asset_check(asset=next_track_dataset)
def validation_labels_known(next_track_dataset: DatasetHandle) -> dg.AssetCheckResult:
    """At least half the validation labels occur in train; below that, most hidden tracks can
    never be recommended (bring more playlists, or a smaller sample_percent is too small)."""
    unknown = next_track_dataset.summary["validation_labels_unknown_share"]
    return dg.AssetCheckResult(
        passed=1 - unknown >= MIN_KNOWN_LABELS,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=for_display({"validation_labels_unknown_share": unknown}),
        description=f"{1 - unknown:.1%} of validation labels occur in the train split",
    )


@dg.asset_check(asset=next_track_registered_model, additional_deps=[raw_playlist_events])
def registered_model_is_fresh(
    context: dg.AssetCheckExecutionContext, next_track_registered_model: RegisteredModel
) -> dg.AssetCheckResult:
    """The registered model was trained after the latest raw data arrived."""
    instance = context.instance
    raw = instance.get_latest_materialization_event(raw_playlist_events.key)
    model = instance.get_latest_materialization_event(dg.AssetKey("next_track_registered_model"))
    lag = (raw.timestamp - model.timestamp) if raw is not None and model is not None else 0.0
    return dg.AssetCheckResult(
        passed=lag <= 0,
        metadata=for_display(
            {
                "raw_data_newer_by_seconds": max(lag, 0.0),
                "model_version": next_track_registered_model.version,
            }
        ),
        description="model is newer than the raw data"
        if lag <= 0
        else f"raw data is {lag:.0f} s newer than the registered model: retrain",
    )
