"""Asset metadata as people read it in the Dagster UI: a table as a table with typed columns
(shown inline, where Markdown is behind "Show Markdown"), numbers rounded for reading, and a
plot shown on the asset's page."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import dagster as dg

from ml.evaluation.report import display_number
from orchestration.resources import MlflowResource

COLUMN_TYPES = {bool: "bool", int: "int", float: "float", str: "string"}


def column_type(values: list[Any]) -> str:
    """The first typed value's type (bool before int: a bool is an int in Python)."""
    for value in values:
        for python_type, name in COLUMN_TYPES.items():
            if isinstance(value, python_type):
                return name
    return "string"


def cell(value: Any) -> Any:
    """A table cell: floats rounded, NaN as an empty cell (the UI cannot parse a NaN record)."""
    if isinstance(value, float):
        return None if math.isnan(value) else display_number(value)
    return value


def rows_table(rows: list[dict]) -> dg.TableMetadataValue:
    """``rows`` (dicts with the same keys, in order) as a table whose columns carry their types:
    names as strings, metrics as floats, counts as ints."""
    names = list(rows[0]) if rows else []
    schema = dg.TableSchema(
        columns=[dg.TableColumn(n, column_type([r.get(n) for r in rows])) for n in names]
    )
    records = [dg.TableRecord({n: cell(r.get(n)) for n in names}) for r in rows]
    return dg.MetadataValue.table(records, schema)


def for_display(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` with its plain floats rounded for reading (0.6015, not 0.6014641288433382)."""
    return {
        key: display_number(value) if isinstance(value, float) else value
        for key, value in metadata.items()
    }


def mlflow_plot(
    mlflow: MlflowResource, experiment_id: str, run_id: str, path: str, label: str
) -> dict[str, dg.MetadataValue]:
    """The run's PNG artifact at ``path`` as an image the asset's page shows in place (Markdown
    under 1,000 characters is rendered there; a data-URI image is longer and would sit behind
    "Show Markdown"), served by the MLflow UI, and a link to it in the run's artifact view."""
    return {
        label: dg.MetadataValue.md(f"![{label}]({mlflow.artifact_file_url(run_id, path)})"),
        f"{label}_in_mlflow": dg.MetadataValue.url(
            mlflow.artifact_url(experiment_id, run_id, path)
        ),
    }
