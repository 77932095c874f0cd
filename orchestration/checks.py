"""Asset checks beyond dbt's tests (those come from dagster-dbt)."""

import dagster as dg

from ml.evaluation.selection import GATE_METRICS, EvidenceFloor, baseline_gate
from orchestration.assets.next_track.dataset import DatasetHandle, next_track_dataset
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.assets.next_track.registry import next_track_registered_model
from orchestration.assets.next_track.selection import next_track_candidate_metrics
from orchestration.assets.registration import RegisteredModel
from orchestration.assets.selection import Selection
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


@dg.asset_check(asset=next_track_candidate_metrics, blocking=True)
def selected_model_beats_baselines(next_track_candidate_metrics: Selection) -> dg.AssetCheckResult:
    """The selected model must be at least as good as both baselines (most popular, sequential
    rules on the last track) on the whole validation split at hit rate@10, hit rate@100 and
    MRR@100 (a tie passes), on at least min_validation_queries queries; blocking, so a model
    that serves a worse top 10 or a worse long list is never registered: a baseline that wins is
    reported, not deployed. The description names each metric it fails and against which
    baseline."""
    floor = EvidenceFloor(
        next_track_candidate_metrics.min_validation_queries,
        "validation queries",
        "next_track_candidate_metrics.config.min_validation_queries",
    )
    selected = next_track_candidate_metrics.selected
    gate = baseline_gate(
        selected, next_track_candidate_metrics.baselines, GATE_METRICS, floor, ties_pass=True
    )
    return dg.AssetCheckResult(
        passed=gate.passed,
        metadata=for_display(
            {
                "validation_queries": int(selected.metrics["queries"]),
                **{f"selected_validation_{m}": selected.metrics[m] for m in GATE_METRICS},
                **{
                    f"{b.family}_baseline_validation_{m}": b.metrics[m]
                    for b in next_track_candidate_metrics.baselines
                    for m in GATE_METRICS
                },
            }
        ),
        description=gate.description,
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
