"""Hand-over between model assets: small typed values (paths into the run folder, metrics) stored
in the run's own folder, so what an asset consumes is its function input and every run keeps its
own copy. Asset values are JSON a person can open (the asset's metadata names the file); values
passed between the ops inside a graph asset (the grid's fan-out) are pickled."""

import pickle
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import TypeAdapter

from orchestration.settings import RUNS_DIR

HANDOVER_DIR = "handover"


class RunFolderIOManager(dg.ConfigurableIOManager):
    base_dir: str = str(RUNS_DIR)

    def _path(self, run_id: str, parts: list[str], asset: bool) -> Path:
        suffix = ".json" if asset else ".pickle"
        return Path(self.base_dir, run_id, HANDOVER_DIR, *parts[:-1], parts[-1] + suffix)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        asset = context.has_asset_key
        path = self._path(context.run_id, _parts(context), asset)
        path.parent.mkdir(parents=True, exist_ok=True)
        if asset:
            path.write_bytes(TypeAdapter(context.dagster_type.typing_type).dump_json(obj, indent=2))
            context.add_output_metadata({"handover": dg.MetadataValue.path(str(path))})
        else:
            path.write_bytes(pickle.dumps(obj))

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        assert upstream is not None
        asset = upstream.has_asset_key
        path = self._path(self._producing_run(context), _parts(upstream), asset)
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: materialize {'/'.join(_parts(upstream))}")
        if not asset:
            return pickle.loads(path.read_bytes())
        return TypeAdapter(context.dagster_type.typing_type).validate_json(path.read_bytes())

    def _producing_run(self, context: dg.InputContext) -> str:
        """This run when it produced the input, else the run of the latest materialization (an
        asset materialized earlier), else the parent run (re-execution of a failed run)."""
        upstream = context.upstream_output
        if context.has_asset_key:
            this_run = context.step_context.run_id
            if self._path(this_run, list(context.asset_key.path), True).exists():
                return this_run
            event = context.instance.get_latest_materialization_event(context.asset_key)
            if event is None:
                raise FileNotFoundError(
                    f"{context.asset_key.to_user_string()} was never materialized"
                )
            return event.run_id
        return upstream.run_id


def _parts(context: dg.OutputContext) -> list[str]:
    if context.has_asset_key:
        return list(context.asset_key.path)
    return [
        context.step_key,
        context.name + (f"[{context.mapping_key}]" if context.mapping_key else ""),
    ]
