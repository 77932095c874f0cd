"""What `make run` prints at the end: data counts, the validation table, the test figures and
the registered version, read from the run's own materializations."""

from __future__ import annotations

import dagster as dg

from orchestration.lineage import materialized_in_run

DATA_LINES = [
    ("rows in", "rows_in"),
    ("  dropped: blank user", "rows_blank_user"),
    ("  dropped: blank playlist", "rows_blank_playlist"),
    ("  dropped: blank artist", "rows_blank_artist"),
    ("  dropped: blank track", "rows_blank_track"),
    ("  dropped: artist like null", "rows_null_like_artist"),
    ("  dropped: track like null", "rows_null_like_track"),
    ("  dropped: outside sample", "rows_outside_sample"),
    ("  dropped: repeated track", "rows_repeated_in_playlist"),
    ("rows clean", "rows_clean"),
    ("playlists (>= 3 tracks)", "playlists"),
    ("  excluded: too short", "playlists_too_short"),
    ("tracks", "tracks_clean"),
]


def print_summary(instance: dg.DagsterInstance, run_id: str, seconds: float) -> None:
    def meta(key: str) -> dict:
        return materialized_in_run(instance, dg.AssetKey(key), run_id)

    stats = meta("dataset_stats")
    if stats:
        print("\n== data ==")
        for label, column in DATA_LINES:
            if column in stats:
                print(f"{label:<28} {stats[column]:>12,}")
        print(
            f"split train/validation/test  {stats['playlists_train']:,} / "
            f"{stats['playlists_validation']:,} / {stats['playlists_test']:,}"
        )
    selection = meta("candidate_metrics")
    if selection:
        sample, queries = selection["validation_sample"], selection["validation_queries"]
        print(
            f"\n== validation: every candidate and the baselines ({sample:,} of {queries:,} "
            "queries; finalists re-scored on all) =="
        )
        print(selection["validation"])
    selected = meta("selected_model")
    if selected:
        print(f"\n== selected: {selected['candidate']} -- test split, scored once ==")
        print(selected["test"])
        print(
            f"bundle {selected['bundle_megabytes']:.1f} MB, "
            f"{selected['serving_latency_ms_p50']:.1f} ms per query (median, in process)"
        )
    registered = meta("registered_model")
    if registered:
        print(
            f"\nregistered {registered['model_name']} version {registered['model_version']} as "
            f"@{registered['alias']}: {registered['promotion']}\n{registered['mlflow_run']}"
        )
    print(f"\nrun {run_id} took {seconds:.0f} s")


def print_failure(result) -> None:
    for event in result.all_events:
        if event.is_step_failure:
            print(f"FAILED {event.step_key}: {event.event_specific_data.error.message}")
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(f"CHECK FAILED {evaluation.check_name}: {evaluation.description or ''}")
