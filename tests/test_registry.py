"""ml.registry on the session's MLflow store, without the pipeline: what registering writes on
the registered model itself, what happens to a replaced champion, what reaches the console, and
the experiment's declared kind."""

import os
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.registry import (
    CHAMPION,
    EXPERIMENT_KIND,
    PREVIOUS_CHAMPION,
    LoggedModel,
    ModelCard,
    Promotion,
    current_champion,
    ensure_experiment,
    log_and_register,
    set_alias,
)
from ml.serving import next_track_pyfunc
from tests.conftest import TINY_TRACKS


@pytest.fixture
def registry(tmp_path) -> tuple[MlflowClient, str, ModelCard]:
    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    name = f"registry-{tmp_path.name}"
    experiment_id = ensure_experiment(tracking_uri, name, (tmp_path / "artifacts").as_uri())
    card = ModelCard(
        name, "next_track", "Tiny test model.", "validation hit_rate_at_10", "test_hit_rate_at_10"
    )
    return MlflowClient(tracking_uri), experiment_id, card


def register(client: MlflowClient, experiment_id: str, card: ModelCard, bundle: Path) -> str:
    parent = client.create_run(experiment_id, tags={"kind": "pipeline"}).info.run_id
    keys = [f"{artist}|||{title}" for artist, title in TINY_TRACKS]
    model = LoggedModel(
        card=card,
        pyfunc_file=Path(next_track_pyfunc.__file__),
        bundle_dir=bundle,
        signature=next_track_pyfunc.SIGNATURE,
        example_input=pd.DataFrame({"tracks": [keys[:2]]}),
    )
    _, version = log_and_register(client, experiment_id, parent, model)
    return version


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {
        alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()
    }


def test_a_new_champion_makes_the_old_one_previous_champion_and_the_model_is_described(
    registry, tiny_bundle
):
    client, experiment_id, card = registry
    first = register(client, experiment_id, card, tiny_bundle)
    set_alias(client, card.name, first, Promotion(CHAMPION, "no champion yet"), {}, None)
    second = register(client, experiment_id, card, tiny_bundle)
    before = current_champion(client, card.name).version
    set_alias(client, card.name, second, Promotion(CHAMPION, "beats"), {}, before)

    model = client.get_registered_model(card.name)
    assert aliases(client, card.name) == {CHAMPION: second, PREVIOUS_CHAMPION: first}
    assert client.get_model_version(card.name, first).tags["replaced_by"] == second
    assert "Tiny test model." in model.description
    assert f"`@{PREVIOUS_CHAMPION}`: the champion the current one replaced." in model.description
    assert model.tags["use_case"] == "next_track"
    assert model.tags["selected_on"] == "validation hit_rate_at_10"
    assert model.tags["promoted_on"] == "test_hit_rate_at_10"
    assert model.tags[f"alias_{CHAMPION}"].startswith("the version to serve")
    # The version was created from the logged model, under the run that logged it.
    version = client.get_model_version(card.name, second)
    assert version.source.startswith("models:/") and version.run_id


def test_a_challenger_leaves_the_champion_alone(registry, tiny_bundle):
    client, experiment_id, card = registry
    first = register(client, experiment_id, card, tiny_bundle)
    set_alias(client, card.name, first, Promotion(CHAMPION, "no champion yet"), {}, None)
    second = register(client, experiment_id, card, tiny_bundle)
    set_alias(client, card.name, second, Promotion("challenger", "does not beat"), {}, first)
    assert aliases(client, card.name) == {CHAMPION: first, "challenger": second}


def test_registering_prints_nothing(registry, tiny_bundle, capfd):
    """MLflow's register_model prints "Successfully registered model ..." and "Created version"
    lines to the console; registration goes through the client, which does not."""
    client, experiment_id, card = registry
    register(client, experiment_id, card, tiny_bundle)
    register(client, experiment_id, card, tiny_bundle)
    out, err = capfd.readouterr()
    for line in ("Successfully registered model", "Created version", "already exists"):
        assert line not in out + err, out + err


def test_the_experiment_is_declared_a_model_training_experiment(registry):
    """MLflow 3.17.2's UI does not read this tag to pick its view (docs/mlflow.md): it is the
    experiment's kind for MLflow's API and for UIs that honour it."""
    client, experiment_id, _ = registry
    tags = client.get_experiment(experiment_id).tags
    assert tags["mlflow.experimentKind"] == EXPERIMENT_KIND["mlflow.experimentKind"]
    assert EXPERIMENT_KIND["mlflow.experimentKind"] == "custom_model_development"


def test_registering_and_loading_the_champion_follow_the_client_not_the_global_uri(
    registry, tiny_bundle, tmp_path, monkeypatch
):
    """MLflow's fluent API reads a process-wide URI: pointed elsewhere, registration and the
    champion's comparison still use the client's store, and leave the global as it was."""
    import mlflow

    from orchestration.assets.registration import compare_with_champion

    client, experiment_id, card = registry
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    mlflow.set_tracking_uri(elsewhere)
    version = register(client, experiment_id, card, tiny_bundle)
    set_alias(client, card.name, version, Promotion(CHAMPION, "no champion yet"), {}, None)
    loaded = []
    comparison = compare_with_champion(
        client, card.name, "lineage", 0.5, lambda model: loaded.append(model) or 0.25
    )
    assert client.get_model_version(card.name, version).run_id  # in the client's store
    assert [type(model).__name__ for model in loaded] == ["PyFuncModel"]
    assert comparison.promotion.alias == CHAMPION  # 0.5 beats the champion's 0.25
    assert mlflow.get_tracking_uri() == elsewhere
    assert os.environ["MLFLOW_TRACKING_URI"] == elsewhere
    assert not MlflowClient(elsewhere).search_experiments(filter_string=f"name = '{card.name}'")
