"""What the Dagster UI shows of a candidate table and of figures: a table with typed columns
whose names read as written, floats rounded for reading, counts as ints."""

import json

import dagster as dg

from ml.evaluation.report import display_number, table_rows
from orchestration.metadata import for_display, rows_table
from tests.test_markdown import HYBRID, result


def test_the_candidate_table_is_a_typed_table_with_names_as_written():
    results = [result(HYBRID, 0.6014641288433382), result("popularity", 0.1, baseline=True)]
    rows = table_rows(results, 100, selected=HYBRID)
    rows[1]["coverage_at_100"] = float("nan")  # a metric a family does not report
    table = rows_table(rows)
    assert isinstance(table, dg.TableMetadataValue)
    types = {c.name: c.type for c in table.schema.columns}
    assert types["candidate"] == types["family"] == types["role"] == "string"
    assert types["hit_rate_at_100"] == types["fit_seconds"] == "float"
    assert types["queries"] == "int"
    # What the UI parses (JSON.parse of each record): NaN would make the row unreadable.
    records = [json.loads(json.dumps(r.data, allow_nan=False)) for r in table.records]
    assert records[0]["candidate"] == HYBRID
    assert records[0]["hit_rate_at_100"] == 0.6015
    assert records[0]["queries"] == 500 and isinstance(records[0]["queries"], int)
    assert records[1]["coverage_at_100"] is None


def test_figures_are_rounded_for_reading_and_the_rest_kept():
    shown = for_display(
        {"hit_rate": 0.6014641288433382, "stderr": 0.000123456, "seconds": 3415.3, "queries": 3415}
    )
    assert shown == {"hit_rate": 0.6015, "stderr": 0.0001235, "seconds": 3415.0, "queries": 3415}
    assert isinstance(shown["queries"], int)
    assert display_number(123456.78) == 123457.0 and display_number(0.0) == 0.0
