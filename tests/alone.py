"""Materialize one asset alone, as hooli-data-eng-pipelines tests its assets: the hand-overs it
reads are given values, its resources are the test's (temporary folders, a fresh MLflow store)."""

import tempfile
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import TypeAdapter


class GivenInputs(dg.IOManager):
    """Hands each upstream asset's given value to the asset under test."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        raise AssertionError("given inputs are read, never written")

    def load_input(self, context: dg.InputContext) -> Any:
        return self.values[context.asset_key.to_user_string()]


def run_alone(
    asset: dg.AssetsDefinition,
    inputs: dict[str, Any],
    resources: dict[str, Any],
    config: dict | None = None,
) -> Any:
    """The value ``asset`` hands over when only it runs: ``inputs`` by upstream asset name,
    ``config`` its run config (Dagster's ``ops`` entry for it)."""
    given = [dg.SourceAsset(name, io_manager_key="given_inputs") for name in inputs]
    ops = {asset.node_def.name: {"config": config}} if config else {}
    result = dg.materialize(
        [asset, *given],
        resources={"given_inputs": GivenInputs(inputs), **resources},
        run_config={"ops": ops},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return result.asset_value(asset.key)


def handovers(run_folder: Path, kinds: dict[str, type]) -> dict[str, Any]:
    """A finished run's hand-overs, by asset name, read back as their types."""
    return {
        name: TypeAdapter(kind).validate_json(
            (run_folder / "handover" / f"{name}.json").read_bytes()
        )
        for name, kind in kinds.items()
    }


def fresh_resources(tmp_path: Path) -> dict[str, Any]:
    """The session's run store (it holds the run's models), an MLflow store of the test's own
    and the run store's IO manager."""
    from orchestration.io_manager import RunStoreIOManager
    from orchestration.resources import MlflowResource
    from orchestration.storage import RunStorage

    storage = RunStorage(keep_runs=1_000)
    return {
        "storage": storage,
        "io_manager": RunStoreIOManager(storage=storage),
        "mlflow": MlflowResource(
            tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
            artifact_location=(tmp_path / "artifacts").as_uri(),
            lock_dir=str(tmp_path / "locks"),
        ),
    }


def register_alone(
    asset: dg.AssetsDefinition,
    use_case: str,
    run: dict[str, Any],
    selection: Any,
    resources: dict[str, Any],
):
    """``asset``, a use case's registration, alone on the run's selected model and dataset and
    ``selection``, into the fresh MLflow store of ``resources``: the first version becomes
    champion, "no champion yet" written on it. The version."""
    from mlflow import MlflowClient

    from ml.registry import CHAMPION

    inputs = {
        f"{use_case}_selected_model": run[f"{use_case}_selected_model"],
        f"{use_case}_candidate_metrics": selection,
        f"{use_case}_dataset": run[f"{use_case}_dataset"],
    }
    registered = run_alone(asset, inputs, resources)
    assert (registered.version, registered.alias) == ("1", CHAMPION)
    assert registered.reason == "no champion yet"
    client = MlflowClient(resources["mlflow"].tracking_uri)
    version = client.get_model_version(registered.name, "1")
    assert "Promotion: no champion yet." in version.description
    assert version.tags["candidate"] == run[f"{use_case}_selected_model"].candidate
    assert version.tags["data_fingerprint"] == run[f"{use_case}_dataset"].fingerprint
    assert_champion_downloads_from_the_resource(resources["mlflow"], registered.name, version)
    return version


def assert_champion_downloads_from_the_resource(mlflow_resource, name: str, version) -> None:
    """The serving tables' download of the champion reads the resource's registry, not the
    process-wide MLflow URI (pointed here at an empty store; conftest restores it)."""
    import mlflow

    from ml.registry import current_champion
    from orchestration.assets.champion_tables import champion_bundle

    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/elsewhere.db")
        champion = current_champion(mlflow_resource.client(), name)
        bundle, built_from = champion_bundle(
            mlflow_resource, name, champion, Path(folder) / "champion"
        )
    assert built_from.model_version == str(version.version)
    assert built_from.data_fingerprint == version.tags["data_fingerprint"]
    assert bundle.info["candidate"] == version.tags["candidate"]
