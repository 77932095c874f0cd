"""MLflow tracking and registry with plain mlflow calls (no Dagster).

Backend: a database (sqlite), never the file store, with an explicit artifact location; one
experiment per use case, of kind model training; aliases (champion, challenger), not stages.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

CHAMPION, CHALLENGER = "champion", "challenger"
# The champion a newer version replaced (the version to roll back to).
PREVIOUS_CHAMPION = "previous-champion"
ML_PACKAGE = Path(__file__).parent
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
# The experiment's kind in MLflow's data model. MLflow 3.17.2's UI does not read it to choose
# its view (a browser-side setting does: docs/mlflow.md); UIs that honour the tag open the runs.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# Inference needs these (no gensim: vectors ship as numpy); explicit, because inference from
# imports misses some.
PIP_REQUIREMENTS = [
    f"mlflow=={mlflow.__version__}",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "pydantic",
    "lightgbm==4.7.0",
]


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str) -> str:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(
                name, artifact_location=artifact_location, tags=EXPERIMENT_KIND
            )
        except MlflowException as e:
            if e.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            # Another run's step created it since the lookup.
            experiment_id = client.get_experiment_by_name(name).experiment_id
    else:
        experiment_id = experiment.experiment_id
        if experiment.tags.get("mlflow.experimentKind") != EXPERIMENT_KIND["mlflow.experimentKind"]:
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(experiment_id, key, value)
    return experiment_id


def _params(values: dict) -> list[Param]:
    return [Param(str(k), str(v)[:6000]) for k, v in values.items()]


def _metrics(values: dict[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, 0) for k, v in values.items() if v == v]  # drops NaN


def log_child_run(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str,
    name: str,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """A finished run nested under the pipeline's run."""
    run = client.create_run(
        experiment_id, run_name=name, tags={"mlflow.parentRunId": parent_run_id, **tags}
    )
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=_metrics(metrics),
        params=_params(params),
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    client.set_terminated(run_id)
    return run_id


@contextmanager
def tracking_at(uri: str) -> Iterator[None]:
    """MLflow's fluent calls (``start_run``, ``pyfunc.log_model``, ``pyfunc.load_model``) read one
    process-wide tracking URI: it is ``uri`` for the duration only, and what it was after, so no
    call depends on another having set it."""
    before, environment = mlflow.get_tracking_uri(), os.environ.get(TRACKING_URI_VARIABLE)
    mlflow.set_tracking_uri(uri)  # sets the environment variable too
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if environment is None:
            os.environ.pop(TRACKING_URI_VARIABLE, None)
        else:
            os.environ[TRACKING_URI_VARIABLE] = environment


def training_dataset(name: str, uri: str, fingerprint: str) -> MetaDataset:
    """The data a model trained on (``uri``: file:// or s3://), as an MLflow dataset whose digest
    is its fingerprint: a registered version then shows which data made it. The source type is
    declared; resolving it from the URI matches two equal source classes and warns every run."""
    source = get_dataset_source_from_json(
        json.dumps({"uri": uri}), source_type="local" if uri.startswith("file:") else "s3"
    )
    return MetaDataset(source, name=name, digest=fingerprint)


@dataclass(frozen=True)
class ModelCard:
    """What a registered model is, written on the model itself (not only on its versions): its
    description and tags on the registry page."""

    name: str
    use_case: str
    task: str  # a sentence: what goes in, what comes out
    selected_on: str  # the validation metric a run selects its candidate on
    promoted_on: str  # the test metric a version must beat the champion on

    def description(self) -> str:
        return (
            f"{self.task}\n\n"
            f"Each version is the candidate one pipeline run selected on {self.selected_on} "
            "among every family's candidates, beside the baselines. Aliases:\n\n"
            f"- `@{CHAMPION}`: {self.alias_meanings()[CHAMPION]}\n"
            f"- `@{CHALLENGER}`: {self.alias_meanings()[CHALLENGER]}\n"
            f"- `@{PREVIOUS_CHAMPION}`: {self.alias_meanings()[PREVIOUS_CHAMPION]}\n\n"
            "Each version's tags give its data lineage and fingerprints, its "
            f"{self.promoted_on} beside the baselines', and `promotion`: why it got its alias."
        )

    def alias_meanings(self) -> dict[str, str]:
        return {
            CHAMPION: "the version to serve: the first one, one trained on a new data lineage, "
            f"or one that beats the champion's {self.promoted_on} re-scored on its test split.",
            CHALLENGER: "the latest version that did not beat the champion.",
            PREVIOUS_CHAMPION: "the champion the current one replaced.",
        }

    def tags(self) -> dict[str, str]:
        return {
            "use_case": self.use_case,
            "selected_on": self.selected_on,
            "promoted_on": self.promoted_on,
            **{f"alias_{alias}": meaning for alias, meaning in self.alias_meanings().items()},
        }


def describe_registered_model(client: MlflowClient, card: ModelCard) -> None:
    """Creates the registered model with its description and tags, or brings an existing one's
    up to date."""
    try:
        client.create_registered_model(card.name, tags=card.tags(), description=card.description())
    except MlflowException as e:
        if e.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        client.update_registered_model(card.name, description=card.description())
        for key, value in card.tags().items():
            client.set_registered_model_tag(card.name, key, value)


def log_to_run(client: MlflowClient, run_id: str, params: dict, metrics: dict[str, float]) -> None:
    """Params and metrics added to an existing run (the pipeline's run)."""
    client.log_batch(run_id, metrics=_metrics(metrics), params=_params(params))


@dataclass(frozen=True, kw_only=True)
class LoggedModel:
    """A model as ``log_and_register`` logs it: the pyfunc from code with its bundle, the run's
    params, metrics, tags and artifacts, and the data it trained on."""

    card: ModelCard  # the registered model it becomes a version of
    pyfunc_file: Path
    bundle_dir: Path
    signature: ModelSignature
    example_input: pd.DataFrame
    run_name: str = "selected"
    params: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    training_data: MetaDataset | None = None  # logged as the run's training input


def log_and_register(
    client: MlflowClient, experiment_id: str, parent_run_id: str, model: LoggedModel
) -> tuple[str, str]:
    """Log ``model`` under a nested run of ``parent_run_id``, register it under its card, and
    return (run_id, version). The run ends FINISHED only once the version is registered.
    Registered through the client, not ``log_model``'s registered_model_name, which prints
    "Successfully registered model ..." to stderr."""
    with (
        tracking_at(client.tracking_uri),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=model.run_name,
            tags={"mlflow.parentRunId": parent_run_id, **model.tags},
        ) as run,
    ):
        mlflow.log_params({k: str(v)[:6000] for k, v in model.params.items()})
        mlflow.log_metrics({k: v for k, v in model.metrics.items() if v == v})
        for artifact in model.artifacts:
            mlflow.log_artifact(str(artifact))
        if model.training_data is not None:
            mlflow.log_input(model.training_data, context="training")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(model.pyfunc_file),
            artifacts={"bundle": str(model.bundle_dir)},
            code_paths=[str(ML_PACKAGE)],
            pip_requirements=PIP_REQUIREMENTS,
            signature=model.signature,
            input_example=model.example_input,
        )
        describe_registered_model(client, model.card)
        version = client.create_model_version(
            model.card.name, info.model_uri, run_id=run.info.run_id, model_id=info.model_id
        )
    return run.info.run_id, str(version.version)


def code_fingerprint() -> str:
    """The ml package's Python sources, hashed: the code a registered model ships with and the
    code that scores the serving tables."""
    digest = hashlib.sha256()
    for path in sorted(ML_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(ML_PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def current_champion(client: MlflowClient, model_name: str):
    """The champion's model version, or None when there is none. Only "no such model" and "no
    such alias" mean none: any other error (a locked database, a server down) is raised, never
    taken as "no champion", which would promote without a comparison."""
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as e:
        if e.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None  # no registered model of that name
        # MLflow reports a model without that alias as an invalid parameter.
        alias_missing = f"alias {CHAMPION} not found"
        if e.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE) and alias_missing in str(e):
            return None
        raise


def resolve_model_version(client: MlflowClient, model_uri: str) -> ModelVersion | None:
    """The registered version a ``models:/name@alias`` or ``models:/name/3`` URI names at this
    moment; None for any other kind of URI."""
    if not model_uri.startswith("models:/"):
        return None
    path, by_alias, alias = model_uri.removeprefix("models:/").partition("@")
    if by_alias:
        return client.get_model_version_by_alias(path, alias)
    name, _, version = path.rpartition("/")
    return client.get_model_version(name, version) if name and version.isdigit() else None


@dataclass(frozen=True)
class Promotion:
    alias: str
    reason: str


def decide_promotion(
    score: float,
    lineage: str,
    champion_version: str | None,
    champion_lineage: str | None,
    champion_score: float | None,
) -> Promotion:
    """champion when there is none, when the data lineage changed (the old champion was trained
    on other data: its score on this split says nothing), or when it beats the champion on the
    same test split; otherwise challenger."""
    if champion_version is None:
        return Promotion(CHAMPION, "no champion yet")
    if champion_lineage != lineage:
        return Promotion(
            CHAMPION,
            f"new data lineage: champion v{champion_version} was trained on {champion_lineage!r}, "
            f"this model on {lineage!r} (replaced because the data changed, not because it was "
            f"beaten; the old champion scored {champion_score} on this split)",
        )
    if champion_score is None or score > champion_score:
        return Promotion(
            CHAMPION, f"beats champion v{champion_version}: {score:.4f} > {champion_score:.4f}"
        )
    return Promotion(
        CHALLENGER,
        f"does not beat champion v{champion_version}: {score:.4f} <= {champion_score:.4f}",
    )


def set_alias(
    client: MlflowClient,
    model_name: str,
    version: str,
    promotion: Promotion,
    tags: dict,
    champion_before: str | None,
) -> None:
    """Tags first, alias last: a version that carries an alias is always fully described. A
    champion replaced by ``version`` becomes the previous champion."""
    for key, value in {**tags, "promotion": promotion.reason}.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    client.set_registered_model_alias(model_name, promotion.alias, version)
    if promotion.alias == CHAMPION and champion_before not in (None, version):
        client.set_model_version_tag(model_name, champion_before, "replaced_by", version)
        client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, champion_before)


def end_orphaned_runs(
    client: MlflowClient, experiment_ids: list[str], dagster_run_is_live: Callable[[str], bool]
) -> list[str]:
    """MLflow runs still RUNNING whose Dagster run is over (killed mid-registration, say) are
    ended as FAILED."""
    ended = []
    for run in client.search_runs(experiment_ids, "attributes.status = 'RUNNING'"):
        dagster_run = run.data.tags.get("dagster_run_id")
        if dagster_run and not dagster_run_is_live(dagster_run):
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FAILED))
            ended.append(run.info.run_id)
    return ended
