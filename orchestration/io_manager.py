"""Hand-over between model assets: small typed values (storage keys, metrics) stored in the run
store (orchestration/storage.py) under the run that produced them, so what an asset consumes is
its function input, every run keeps its own copy, and a step on another machine reads what a step
elsewhere wrote. Asset values are JSON a person can open; values passed between the ops inside a
graph asset (the grid's fan-out) are pickled. Built on Dagster's UPathIOManager: the same code
writes to a folder or to a bucket."""

from __future__ import annotations

import pickle
from typing import Any

import dagster as dg
from pydantic import TypeAdapter
from upath import UPath

from orchestration.storage import RunStorage, run_key

HANDOVER = "handover"


class RunScopedIOManager(dg.UPathIOManager):
    """``runs/<run id>/handover/<asset>.json`` for assets, ``.../<step>/<output>.pickle`` for op
    outputs. An input is read from the run that produced it: this run, else the latest
    materialization of the asset, else (re-execution) the parent run."""

    def __init__(self, base_path: UPath, storage: RunStorage):
        super().__init__(base_path=base_path)
        self.storage = storage

    def get_asset_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        if isinstance(context, dg.OutputContext):
            run_id = context.run_id
        else:
            run_id = self._producing_run(context)
        return UPath(run_key(run_id, HANDOVER, *context.asset_key.path) + ".json")

    def get_op_output_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        output = context if isinstance(context, dg.OutputContext) else context.upstream_output
        assert output is not None
        name = output.name + (f"[{output.mapping_key}]" if output.mapping_key else "")
        return UPath(run_key(output.run_id, HANDOVER, output.step_key, name) + ".pickle")

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if context.has_asset_key:
            path.write_bytes(TypeAdapter(context.dagster_type.typing_type).dump_json(obj, indent=2))
        else:
            path.write_bytes(pickle.dumps(obj))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        if not path.exists():
            upstream = context.upstream_output
            name = context.asset_key.to_user_string() if context.has_asset_key else upstream.name
            raise FileNotFoundError(
                f"{path} not found: materialize {name} (its hand-over is not in the run store "
                f"{self.storage.url})"
            )
        if not context.has_asset_key:
            return pickle.loads(path.read_bytes())
        return TypeAdapter(context.dagster_type.typing_type).validate_json(path.read_bytes())

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, dg.MetadataValue]:
        if not context.has_asset_key:
            return {}
        key = run_key(context.run_id, HANDOVER, *context.asset_key.path) + ".json"
        return {"handover": dg.MetadataValue.text(key)}

    def _producing_run(self, context: dg.InputContext) -> str:
        this_run = context.step_context.run_id
        path = run_key(this_run, HANDOVER, *context.asset_key.path) + ".json"
        if self.storage.exists(path):
            return this_run
        event = context.instance.get_latest_materialization_event(context.asset_key)
        if event is None:
            raise FileNotFoundError(f"{context.asset_key.to_user_string()} was never materialized")
        return event.run_id


class RunStoreIOManager(dg.ConfigurableIOManagerFactory):
    """The IO manager over the run store resource: a folder or a bucket, as it is configured."""

    storage: RunStorage

    def create_io_manager(self, context: dg.InitResourceContext) -> RunScopedIOManager:
        return RunScopedIOManager(self.storage.root(), self.storage)
