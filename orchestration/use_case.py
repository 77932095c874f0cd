"""What differs between the platform's use cases (next-track, user-items): one description each,
read by the factory that builds the parts their pipelines share (orchestration/factory.py)."""

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import dagster as dg

from ml.registry import ModelCard
from orchestration.storage import RunStorage


class DatasetFacts(Protocol):
    """What registration reads of a use case's dataset hand-over."""

    fingerprint: str  # of everything the models see
    source: str  # the data lineage
    warehouse_key: str  # the warehouse build it was read from


@dataclass(frozen=True, kw_only=True)
class UseCase:
    """A use case's pipeline: assets named ``<name>_<stage>`` (dataset, baseline_candidates,
    candidate_metrics, selected_model, registered_model), grouped and run as ``<name>``."""

    name: str  # "next_track": the asset group, the job and the asset-name prefix
    experiment: str  # the MLflow experiment
    model_name: str  # the registered model
    task: str  # the model card's sentence: what goes in, what comes out
    query_noun: str  # what a validation query is: "queries" (playlists), "users"
    promotion_metric: str  # a version must beat the champion's test_<metric>
    reported_metrics: tuple[str, ...]  # the test columns of a version's description
    pyfunc: ModuleType  # SIGNATURE and example_input(bundle folder); logged from its file
    training_table: str  # the warehouse table a version trained on (its MLflow dataset)
    # The champion's promotion figure on this run's test split: (pyfunc, dataset, storage).
    rescore: Callable[[Any, Any, RunStorage], float]
    fingerprints: Callable[[Any], dict[str, str]]  # the dataset's, as version tags
    tag_baselines: bool  # the baselines' test figures as version tags too
    job_description: str
    schedule_cron: str
    schedule_description: str

    def asset_key(self, stage: str) -> dg.AssetKey:
        return dg.AssetKey(f"{self.name}_{stage}")

    def model_card(self, selection_metric: str) -> ModelCard:
        return ModelCard(
            name=self.model_name,
            use_case=self.name,
            task=self.task,
            selected_on=f"validation {selection_metric}",
            promoted_on=f"test_{self.promotion_metric}",
        )
