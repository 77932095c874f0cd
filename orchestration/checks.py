"""Asset checks beyond dbt's tests (those come from dagster-dbt)."""

import dagster as dg

from orchestration.assets.handover import EMBEDDINGS_SUMMARY, SELECTED_SUMMARY, read_json
from orchestration.assets.ingest import raw_playlist_events
from orchestration.assets.model import registered_model, selected_model
from orchestration.assets.training import track_embeddings

MIN_VALIDATION_COVERAGE = 0.5


@dg.asset_check(asset=track_embeddings)
def validation_vocabulary_coverage() -> dg.AssetCheckResult:
    """At least one candidate knows the last track of half the validation queries; below that,
    most predictions fall back to popularity (lower min_count, or bring more data)."""
    coverage = read_json(EMBEDDINGS_SUMMARY)["validation_last_track_coverage"]
    best = max(coverage, key=coverage.get)
    return dg.AssetCheckResult(
        passed=coverage[best] >= MIN_VALIDATION_COVERAGE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"best_coverage": coverage[best], "best_candidate": best, **coverage},
        description=f"{best} knows {coverage[best]:.1%} of validation last tracks",
    )


@dg.asset_check(asset=selected_model, blocking=True)
def selected_model_beats_popularity() -> dg.AssetCheckResult:
    """The chosen model's test hit rate@K must exceed the most-popular baseline's; blocking, so a
    model that does not is never registered."""
    selected = read_json(SELECTED_SUMMARY)
    metric = f"hit_rate_at_{selected['k']}"
    model = selected["test"][selected["candidate"]][metric]
    popular = selected["test"]["most_popular"][metric]
    return dg.AssetCheckResult(
        passed=model > popular,
        metadata={f"model_test_{metric}": model, f"most_popular_test_{metric}": popular},
        description=f"{selected['candidate']} {model:.4f} vs most popular {popular:.4f}",
    )


@dg.asset_check(asset=registered_model, additional_deps=[raw_playlist_events])
def registered_model_is_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    """The registered model was trained after the latest raw data arrived."""
    instance = context.instance
    raw = instance.get_latest_materialization_event(raw_playlist_events.key)
    model = instance.get_latest_materialization_event(registered_model.key)
    if model is None:
        return dg.AssetCheckResult(passed=False, description="no model registered yet")
    lag = (raw.timestamp - model.timestamp) if raw is not None else 0.0
    return dg.AssetCheckResult(
        passed=lag <= 0,
        metadata={"raw_data_newer_by_seconds": max(lag, 0.0)},
        description="model is newer than the raw data"
        if lag <= 0
        else f"raw data is {lag:.0f} s newer than the registered model: retrain",
    )
