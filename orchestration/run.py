"""`make run`: materialize the whole graph once, in-process, and print what happened.

Runs are recorded in the project's DAGSTER_HOME, so they show up in `make ui` afterwards.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from ml.evaluation import markdown_table
from ml.warehouse import read_table_rows
from orchestration.config import run_config_errors
from orchestration.project import dbt_project
from orchestration.settings import WAREHOUSE_PATH


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default="", help="file or folder; empty: synthetic data")
    parser.add_argument("--playlists", type=int, default=5_000, help="synthetic scale")
    parser.add_argument("--sample-percent", type=float, default=100.0)
    return parser.parse_args(argv)


def run_config(args: argparse.Namespace) -> dict:
    return {
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
        "ops": {
            "raw_playlist_events": {
                "config": {"source": args.source or None, "synthetic_playlists": args.playlists}
            },
            "dbt_models": {"config": {"sample_percent": args.sample_percent}},
        },
    }


def print_summary() -> None:
    stats = read_table_rows(WAREHOUSE_PATH, "dataset_stats")[0]
    print("\n== data ==")
    print(f"rows in                   {stats['rows_in']:>12,}")
    for reason in ("blank_user", "blank_playlist", "blank_artist", "blank_track"):
        print(f"  dropped: {reason:<15} {stats[f'rows_{reason}']:>12,}")
    print(f"  dropped: outside sample {stats['rows_outside_sample']:>12,}")
    print(f"  dropped: repeated track {stats['rows_repeated_in_playlist']:>12,}")
    print(f"rows clean                {stats['rows_clean']:>12,}")
    print(f"playlists (>= 3 tracks)   {stats['playlists']:>12,}")
    print(f"  excluded: too short     {stats['playlists_too_short']:>12,}")
    print(f"tracks                    {stats['tracks_clean']:>12,}")
    print(
        f"split train/validation/test  {stats['playlists_train']:,} / "
        f"{stats['playlists_validation']:,} / {stats['playlists_test']:,}"
    )


def print_model_summary(instance: dg.DagsterInstance) -> None:
    # Imported here: the asset modules need the dbt manifest that main() prepares first.
    from orchestration.assets.handover import (
        CANDIDATE_METRICS,
        SELECTED_SUMMARY,
        metric_columns,
        read_json,
    )

    validation, selected = read_json(CANDIDATE_METRICS), read_json(SELECTED_SUMMARY)
    columns = metric_columns(selected["k"])
    print("\n== validation (every candidate and the baselines) ==")
    print(markdown_table(validation["results"], columns))
    print(f"\n== selected: {selected['candidate']} -- test split, scored once ==")
    print(markdown_table(selected["test"], columns))
    event = instance.get_latest_materialization_event(dg.AssetKey("registered_model"))
    if event is not None:
        meta = event.asset_materialization.metadata
        print(
            f"\nregistered {meta['model_name'].value} version {meta['model_version'].value} "
            f"as @{meta['alias'].value} ({meta['mlflow_run'].value})"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = run_config(args)
    errors = run_config_errors(config)
    if errors:
        print("invalid run config:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 2
    dbt_project.preparer.prepare(dbt_project)
    from orchestration.definitions import defs  # needs the manifest prepared above

    instance = dg.DagsterInstance.get()
    result = defs.resolve_job_def("full_pipeline").execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"FAILED {event.step_key}: {event.event_specific_data.error.message}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                print(f"CHECK FAILED {evaluation.check_name}: {evaluation.description or ''}")
        return 1
    print_summary()
    print_model_summary(instance)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
