"""What `make run` prints at the end: data counts, the validation table, the test figures and
the registered version, read from the run's own materializations."""

from __future__ import annotations

import json

import dagster as dg

from orchestration.console import error_text
from orchestration.lineage import materialized_in_run
from orchestration.storage import RunStorage

DATA_LINES = [
    ("rows in", "rows_in"),
    ("  dropped: blank user", "rows_blank_user"),
    ("  dropped: blank playlist", "rows_blank_playlist"),
    ("  dropped: blank artist", "rows_blank_artist"),
    ("  dropped: blank track", "rows_blank_track"),
    ("  dropped: artist like null or -", "rows_null_like_artist"),
    ("  dropped: track like null or -", "rows_null_like_track"),
    ("  dropped: outside sample", "rows_outside_sample"),
    ("  dropped: repeated track", "rows_repeated_in_playlist"),
    ("rows clean", "rows_clean"),
    ("playlists (>= 3 tracks)", "playlists"),
    ("  excluded: too short", "playlists_too_short"),
    ("tracks", "tracks_clean"),
]


TOP_CANDIDATES = 5
METRICS = [
    ("hit@10", "hit_rate_at_10"),
    ("hit@100", "hit_rate_at_100"),
    ("mrr@100", "mrr_at_100"),
    ("ndcg@10", "ndcg_at_10"),
]
USER_ITEMS_METRICS = [
    ("ndcg@10", "ndcg_at_10"),
    ("hit@10", "hit_rate_at_10"),
    ("recall@10", "recall_at_10"),
    ("cov@10", "coverage_at_10"),
]


def metric_table(rows: list[tuple[str, str, dict]], metrics=METRICS) -> list[str]:
    """Aligned lines: name, role, then ``metrics``; rows are (name, role, metrics)."""
    width = max(len(name) for name, _, _ in rows)
    header = f"  {'':<{width}}  {'':<9}" + "".join(f"{label:>10}" for label, _ in metrics)
    lines = [header]
    for name, role, figures in rows:
        values = "".join(f"{figures.get(key, float('nan')):>10.4f}" for _, key in metrics)
        lines.append(f"  {name:<{width}}  {role:<9}{values}")
    return lines


def validation_lines(rows: list[dict], metrics=METRICS, use_case: str = "next_track") -> list[str]:
    """The best candidates, the selected one and the baselines (rows come ranked); the others
    are on the use case's candidate_metrics asset."""
    candidates = [r for r in rows if r["role"] == "candidate"]
    shown = [r for r in rows if r["role"] != "candidate" or r in candidates[:TOP_CANDIDATES]]
    lines = metric_table([(r["candidate"], r["role"], r) for r in shown], metrics)
    hidden = len(rows) - len(shown)
    if hidden:
        lines.append(
            f"  ... and {hidden} more candidates (the UI: {use_case}_candidate_metrics; MLflow)"
        )
    return lines


def skipped_line(skipped: dict[str, str]) -> str | None:
    """How many grid units were not fitted in full, and why, in one line."""
    if not skipped:
        return None
    stopped = sum(why.startswith("successive halving") for why in skipped.values())
    kept = sum(why.startswith("time budget: its rung") for why in skipped.values())
    unscreened = sum(why.startswith("time budget: the grid's deadline") for why in skipped.values())
    others = len(skipped) - stopped - kept - unscreened
    said = (
        [f"successive halving stopped {stopped} at its rung"] * bool(stopped)
        + [f"{kept} not started within the time budget, kept at their rung"] * bool(kept)
        + [f"{unscreened} not even screened within the time budget"] * bool(unscreened)
        + [f"{others} skipped at this size"] * bool(others)
    )
    return (
        f"  grid units not fitted in full: {len(skipped)} ({', '.join(said)}; "
        "why: candidates_skipped)"
    )


def test_lines(chosen: dict, metrics=METRICS) -> list[str]:
    """The selected model's and the baselines' test figures (a selected-model handover)."""
    rows = [
        (name, "selected" if name == chosen["candidate"] else "baseline", figures)
        for name, figures in chosen["test"].items()
    ]
    return metric_table(rows, metrics)


def validation_heading(selection: dict) -> str:
    """The validation section's heading from ``next_track_candidate_metrics``' metadata: how
    many queries the candidates and the finalists were measured on, and what selected."""
    sample, queries = selection["validation_sample"], selection["validation_queries"]
    finalists = (
        selection.get("finalists_measured_on") or selection.get("finalist_sample") or queries
    )
    rescored = "all" if finalists >= queries else f"{finalists:,}"
    if selection.get("sample_decided"):
        rescored = "none (the sample decided)"
    metric, tiebreak = selection["selection_metric"], selection["selection_tiebreak"]
    return (
        f"== validation ({sample:,} of {queries:,} queries; finalists re-scored on "
        f"{rescored}; selected on {metric}, ties: {tiebreak}) =="
    )


def print_summary(
    instance: dg.DagsterInstance,
    run_id: str,
    seconds: float,
    storage: RunStorage,
    where: str = "make ui, Runs",
) -> None:
    def meta(key: str) -> dict:
        return materialized_in_run(instance, dg.AssetKey(key), run_id)

    def handover(metadata: dict) -> dict:
        return json.loads(storage.read_bytes(metadata["handover"]))

    stats = meta("dataset_stats")
    if stats:
        print("\n== data ==")
        for label, column in DATA_LINES:
            if stats.get(column):  # drops that did not happen are left out
                print(f"{label:<28} {stats[column]:>12,}")
        print(
            f"split train/validation/test  {stats['playlists_train']:,} / "
            f"{stats['playlists_validation']:,} / {stats['playlists_test']:,}"
        )
    selection = meta("next_track_candidate_metrics")
    if selection:
        print(f"\n{validation_heading(selection)}")
        print("\n".join(validation_lines(handover(selection)["rows"])))
        line = skipped_line(selection.get("candidates_skipped") or {})
        if line:
            print(line)
    selected = meta("next_track_selected_model")
    if selected:
        refit = " (each refit on train + validation)" if "refit_playlists" in selected else ""
        print(f"\n== test split, scored once: {selected['candidate']} and the baselines{refit} ==")
        print("\n".join(test_lines(handover(selected))))
        print(
            f"bundle {selected['bundle_megabytes']:.1f} MB, "
            f"{selected['serving_latency_ms_p50']:.1f} ms per query (median, in process)"
        )
    print_registered(meta("next_track_registered_model"))
    table = meta("track_recommendations")
    print_table(table, "track_recommendations", "tracks")
    reason = tracks_reason(stats, meta("next_track_dataset"), table)
    if reason:
        print(reason)
    print_user_items(meta, handover)
    print(f"\nrun {run_id} took {seconds:.0f} s (full log: {where})")


def tracks_reason(stats: dict, dataset: dict, table: dict) -> str | None:
    """Why the serving table holds another number of tracks than the data's ``tracks`` line, in
    one line from this run's figures; None when they are the same."""
    if not (stats and dataset and table) or table["tracks"] == stats["tracks_clean"]:
        return None
    tabled, clean, known = table["tracks"], stats["tracks_clean"], dataset["tracks"]
    if table["data_fingerprint"] != dataset["fingerprint"]:
        return (
            f"  {tabled:,} tracks, not {clean:,}: the table is champion version "
            f"{table['champion_version']}'s, trained on other data (its catalogue: "
            f"{table['catalogue_tracks']:,} tracks)"
        )
    reasons = []
    if known < clean:
        reasons.append(
            f"the model knows the {known:,} tracks of train playlists; the other "
            f"{clean - known:,} occur only in validation or test playlists or in playlists too "
            "short to split"
        )
    if tabled < known:
        reasons.append(
            f"the table holds the {tabled:,} most played ({table['share_of_train_plays']:.1%} "
            "of train plays; max_tracks), the model serves the rest live"
        )
    return f"  {tabled:,} tracks, not {clean:,}: " + "; ".join(reasons)


def print_user_items(meta, handover) -> None:
    dataset = meta("user_items_dataset")
    if dataset:
        print(
            f"\n== interactions: {dataset['users']:,} users, {dataset['items']:,} items; "
            f"{dataset['validation_queries']:,} validation and {dataset['test_queries']:,} test "
            "users with labels =="
        )
    selection = meta("user_items_candidate_metrics")
    if selection:
        floor = selection.get("coverage_floor", 0.0)
        print(f"\n== validation (best NDCG@10 with coverage@10 >= {floor:g}) ==")
        rows = handover(selection)["rows"]
        print("\n".join(validation_lines(rows, USER_ITEMS_METRICS, "user_items")))
    selected = meta("user_items_selected_model")
    if selected:
        print(f"\n== test, scored once: {selected['candidate']} (refit) and popularity ==")
        print("\n".join(test_lines(handover(selected), USER_ITEMS_METRICS)))
    print_registered(meta("user_items_registered_model"))
    table = meta("user_recommendations")
    print_table(table, "user_recommendations", "users")
    if table:
        share = {b: table[f"share_based_on_{b}"] for b in ("user", "history", "popularity")}
        print(
            f"  users known to the model {share['user']:.1%}, scored from their own items "
            f"{share['history']:.1%}, given the most popular {share['popularity']:.1%}"
        )


def print_registered(registered: dict) -> None:
    if registered:
        print(
            f"\nregistered {registered['model_name']} version {registered['model_version']} as "
            f"@{registered['alias']}: {registered['promotion']}\n{registered['mlflow_run']}"
        )


def print_table(table: dict, name: str, keys: str) -> None:
    if table and "kept_from_run" in table:
        print(
            f"{name}: kept, built by run {table['kept_from_run']} from champion version "
            f"{table['champion_version']} ({table[keys]:,} {keys}), which is still the champion; "
            f"{table['path']}"
        )
    elif table:
        print(
            f"{name}: {table['dagster/row_count']:,} rows for {table[keys]:,} {keys} in "
            f"{table['build_seconds']:.1f} s, lookup {table['lookup_ms_p50']:.2f} ms (median); "
            f"{table['path']}"
        )


def print_failure(events: list[dg.DagsterEvent]) -> None:
    for event in events:
        if event.is_step_failure:
            print(f"FAILED {event.step_key}: {error_text(event.event_specific_data.error)}")
    for event in events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(f"CHECK FAILED {evaluation.check_name}: {evaluation.description or ''}")
