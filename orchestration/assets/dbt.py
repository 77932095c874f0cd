"""Every dbt model as an asset and every dbt test as an asset check."""

import json
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from ml.warehouse import read_only
from orchestration.config import DbtBuildConfig
from orchestration.project import dbt_project
from orchestration.settings import WAREHOUSE_PATH, WAREHOUSE_POOL


class GroupedTranslator(DagsterDbtTranslator):
    """A model's use-case folder (models/next_track, ...) is its asset group, beside the Python
    assets of the same use case."""

    def get_group_name(self, dbt_resource_props):
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if dbt_resource_props["resource_type"] == "model" and len(fqn) > 2 else None


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=GroupedTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
    dbt_vars = {"sample_percent": config.sample_percent, "split_salt": config.split_salt}
    invocation = dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context)
    events, error = [], None
    try:
        events.extend(invocation.stream())
    except Exception as e:  # re-raised below, after the models that did build are reported
        error = e
    yield from with_row_counts(events, invocation.manifest)
    if error is not None:
        raise error


def with_row_counts(events: list, manifest: dict) -> Iterator:
    """Attach ``dagster/row_count`` to each built model, counted once dbt has exited.

    dagster-dbt's ``fetch_row_counts()`` queries through an adapter connection opened in this
    process while the dbt subprocess still holds the DuckDB file, and leaves it open, which then
    blocks every later read-only connection in the run; one short-lived connection afterwards
    avoids both.
    """
    relations = {
        unique_id: node["relation_name"]
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node.get("relation_name")
    }
    if not any(isinstance(e, dg.Output | dg.AssetMaterialization) for e in events):
        yield from events
        return
    with read_only(WAREHOUSE_PATH) as connection:
        for event in events:
            unique_id = getattr(getattr(event, "metadata", {}).get("unique_id"), "value", None)
            if isinstance(event, dg.Output | dg.AssetMaterialization) and unique_id in relations:
                relation = relations[unique_id]
                row_count = connection.execute(f"select count(*) from {relation}").fetchone()[0]
                extra = {"dagster/row_count": row_count}
                if unique_id.endswith(".dataset_stats") and row_count == 1:
                    # The cleaning summary (rows in, drops by reason, split sizes) in the UI.
                    cursor = connection.execute(f"select * from {relation}")
                    names = [d[0] for d in cursor.description]
                    values = cursor.fetchone()
                    extra.update(
                        (name, value if isinstance(value, int) else float(value))
                        for name, value in zip(names, values, strict=True)
                    )
                event = event.with_metadata({**event.metadata, **extra})
            yield event
