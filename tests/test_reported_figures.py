"""Hit rate@10, hit rate@100, MRR@100 and NDCG@10 of the selected model and both baselines
wherever people read them: `make run`'s summary, the next_track_candidate_metrics table (its Dagster
metadata), and the registered version's MLflow description. Each model has its own figures, so
a figure shown beside the wrong model or under the wrong column fails."""

import re

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.selection import REPORTED_METRICS, candidate_table
from orchestration import summary
from orchestration.metadata import rows_table
from tests.test_markdown import text_of, version_page

SELECTED = "hybrid:1*session_knn+0.5*sequential_rules"
POPULARITY = "popularity:count"
LAST_TRACK = "sequential_rules:w10_last1_strict"
# name -> hit@10, hit@100, MRR@100, NDCG@10 (yes_small's validation figures, rounded)
FIGURES = {
    SELECTED: (0.2063, 0.5699, 0.0907, 0.1180),
    "item_knn:n200": (0.1902, 0.5626, 0.0861, 0.1112),
    POPULARITY: (0.0425, 0.1840, 0.0177, 0.0199),
    LAST_TRACK: (0.1371, 0.4207, 0.0615, 0.0780),
}


def metrics_of(name: str) -> dict[str, float]:
    metrics = dict(zip(REPORTED_METRICS, FIGURES[name], strict=True))
    metrics |= {f"{m}_stderr": 0.005 for m in REPORTED_METRICS}
    return metrics | {
        "hit_rate_at_20": 0.3,
        "ndcg_at_100": 0.2,
        "coverage_at_100": 0.5,
        "queries": 3413.0,
    }


def result(name: str) -> CandidateResult:
    baseline = name in (POPULARITY, LAST_TRACK)
    family = name.split(":")[0]
    return CandidateResult(name, family, "u", {}, {}, "", metrics_of(name), 1.0, 2.0, baseline)


def results() -> list[CandidateResult]:
    return [result(name) for name in FIGURES]


def figures_on_line(lines: list[str], name: str) -> list[float]:
    (line,) = [line for line in lines if line.strip().startswith(name + " ")]
    return [float(x) for x in re.findall(r"\d+\.\d{4}", line)]


def test_the_summary_shows_the_four_figures_of_the_selected_model_and_both_baselines():
    rows = candidate_table(results(), "ndcg_at_10", SELECTED)
    lines = summary.validation_lines(rows)
    assert lines[0].split() == ["hit@10", "hit@100", "mrr@100", "ndcg@10"]
    for name in (SELECTED, POPULARITY, LAST_TRACK):
        assert figures_on_line(lines, name) == list(FIGURES[name])
    chosen = {"candidate": SELECTED, "test": {n: metrics_of(n) for n in FIGURES}}
    lines = summary.test_lines(chosen)
    assert lines[0].split() == ["hit@10", "hit@100", "mrr@100", "ndcg@10"]
    assert " selected " in next(line for line in lines if SELECTED in line)
    for name in (SELECTED, POPULARITY, LAST_TRACK):
        assert figures_on_line(lines, name) == list(FIGURES[name])


def test_the_candidate_metrics_table_holds_the_four_figures_and_the_selection_errors():
    rows = candidate_table(results(), "ndcg_at_10", SELECTED)
    assert [r["candidate"] for r in rows] == [SELECTED, "item_knn:n200", LAST_TRACK, POPULARITY]
    assert [r["role"] for r in rows] == ["selected", "candidate", "baseline", "baseline"]
    table = rows_table(rows)
    columns = [c.name for c in table.schema.columns]
    assert {*REPORTED_METRICS, "ndcg_at_10_stderr", "hit_rate_at_100_stderr"} <= set(columns)
    for record in table.records:
        name = record.data["candidate"]
        assert tuple(record.data[m] for m in REPORTED_METRICS) == FIGURES[name]


def test_the_version_description_shows_the_four_test_figures_of_each_model():
    from ml.evaluation.selection import GATE_METRICS
    from orchestration.assets.next_track.registry import NEXT_TRACK

    test = {n: metrics_of(n) for n in (SELECTED, POPULARITY, LAST_TRACK)}
    rows = candidate_table(results(), "ndcg_at_10", SELECTED)
    reported = NEXT_TRACK.reported_metrics
    reason = "no champion yet"
    page = version_page(SELECTED, test, results()[0], rows, True, GATE_METRICS, reported, reason)
    headers = [text_of(h) for h in re.findall(r"<th>(.*?)</th>", page, re.DOTALL)]
    assert headers == [
        "model",
        "validation ndcg_at_10",
        "test hit_rate_at_10",
        "test hit_rate_at_100",
        "test mrr_at_100",
        "test ndcg_at_10",
    ]
    cells = {}
    for row in re.findall(r"<tr>\s*(<td>.*?)</tr>", page, re.DOTALL):
        name, *figures = [text_of(c) for c in re.findall(r"<td>(.*?)</td>", row, re.DOTALL)]
        cells[name] = [float(f) for f in figures]
    assert cells == {n: [FIGURES[n][3], *FIGURES[n]] for n in test}
    headline = text_of(re.search(r"<p>(.*?)</p>", page, re.DOTALL).group(1))
    assert "selected on validation ndcg_at_10 (hit_rate_at_100 breaking ties)" in headline
    assert "at least as good as both baselines on validation hit_rate_at_10, hit_rate_at_100, " in (
        headline
    )


def test_the_summary_names_the_use_cases_asset_that_holds_the_candidates_it_hides():
    rows = [
        {"candidate": f"ease:l2_{i}", "role": "candidate", **metrics_of(SELECTED)}
        for i in range(summary.TOP_CANDIDATES + 3)
    ]
    for use_case in ("next_track", "user_items"):
        last = summary.validation_lines(rows, use_case=use_case)[-1]
        assert last == f"  ... and 3 more candidates (the UI: {use_case}_candidate_metrics; MLflow)"


def test_the_validation_heading_says_on_how_many_queries_the_finalists_were_measured():
    """From next_track_candidate_metrics' metadata: the sample decided (nothing re-scored), the
    finalists re-scored on part of validation, or on all of it."""
    base = {
        "validation_sample": 10_000,
        "validation_queries": 45_366,
        "selection_metric": "ndcg_at_10",
        "selection_tiebreak": "hit_rate_at_100",
    }
    decided = base | {"finalists_measured_on": 10_000, "sample_decided": True}
    part = {**base, "validation_queries": 199_928, "finalists_measured_on": 50_000}
    whole = base | {"finalists_measured_on": 45_366, "sample_decided": False}
    ties = "selected on ndcg_at_10, ties: hit_rate_at_100) =="
    assert summary.validation_heading(decided) == (
        f"== validation (10,000 of 45,366 queries; finalists re-scored on none (the sample "
        f"decided); {ties}"
    )
    assert summary.validation_heading(part) == (
        f"== validation (10,000 of 199,928 queries; finalists re-scored on 50,000; {ties}"
    )
    assert summary.validation_heading(whole) == (
        f"== validation (10,000 of 45,366 queries; finalists re-scored on all; {ties}"
    )
