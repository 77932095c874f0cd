"""The next-track use case's definitions: its assets and checks, built into a group, a job and a
schedule by the factory."""

import dagster as dg

from orchestration.assets.dbt import next_track_dbt_models
from orchestration.assets.next_track.candidates import (
    neighbourhood_candidates,
    next_track_baseline_candidates,
    rung_references,
    sequential_rules_candidates,
    slist_candidates,
    track_embeddings,
)
from orchestration.assets.next_track.dataset import next_track_dataset
from orchestration.assets.next_track.ingest import raw_playlist_events
from orchestration.assets.next_track.registry import NEXT_TRACK, next_track_registered_model
from orchestration.assets.next_track.selection import (
    next_track_candidate_metrics,
    next_track_selected_model,
)
from orchestration.assets.next_track.serving import (
    track_recommendations,
    track_recommendations_dbt_tests,
)
from orchestration.checks import (
    registered_model_is_fresh,
    validation_labels_known,
)
from orchestration.factory import use_case_definitions
from orchestration.sensors import inbox_sensor


def next_track_definitions() -> dg.Definitions:
    return use_case_definitions(
        NEXT_TRACK,
        assets=[
            raw_playlist_events,
            next_track_dbt_models,
            next_track_dataset,
            rung_references,
            track_embeddings,
            sequential_rules_candidates,
            neighbourhood_candidates,
            slist_candidates,
            next_track_baseline_candidates,
            next_track_candidate_metrics,
            next_track_selected_model,
            next_track_registered_model,
            track_recommendations,
        ],
        asset_checks=[
            validation_labels_known,
            registered_model_is_fresh,
            track_recommendations_dbt_tests,
        ],
        sensors=[inbox_sensor],
    )
