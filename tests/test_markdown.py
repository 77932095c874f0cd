"""Candidate names read as written wherever we emit Markdown (Dagster's metadata tables and check
descriptions, MLflow version descriptions), rendered by a CommonMark renderer with GitHub's
tables: a hybrid's `*` is not emphasis, a `|` does not split a cell."""

import html
import re

import pytest
from markdown_it import MarkdownIt

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.report import markdown_table, table_rows
from ml.evaluation.selection import EvidenceFloor, baseline_gate

HYBRID = "hybrid:1*word2vec:cbow_d48_e15+in_out_last1+0.5*session_knn:k100_s500"
NAMES = [
    HYBRID,
    "sequential_rules:w10_last1_strict",
    "a|b",
    "<i>x</i> & [link](http://y) ~~gone~~ `code` back\\slash __init__ &amp;",
]


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def result(name: str, hit_rate: float, baseline: bool = False) -> CandidateResult:
    metrics = {f"{m}_at_{k}": hit_rate for m in ("hit_rate", "mrr", "ndcg") for k in (10, 20, 100)}
    metrics |= {"coverage_at_100": 0.5, "hit_rate_at_100_stderr": 0.01, "queries": 500.0}
    return CandidateResult(
        name, name.split(":")[0], "unit", {}, {}, "", metrics, 1.0, 2.0, baseline=baseline
    )


def version_page(
    name: str,
    test: dict[str, dict[str, float]],
    selection_of: CandidateResult,
    rows: list[dict],
    ties_pass: bool,
    gate_metrics: tuple[str, ...],
    reported: tuple[str, ...],
    reason: str,
) -> str:
    """The version description of hybrid ``name`` (selected on validation NDCG@10, ``test``
    its and the baselines' figures on both splits), rendered as the registry page shows it."""
    from ml.evaluation.selection import tiebreak_of
    from orchestration.assets.registered_model import version_description
    from orchestration.assets.selection import SelectedModel, Selection

    selected = SelectedModel(
        candidate=name,
        family="hybrid",
        metric="ndcg_at_10",
        bundle_key="",
        validation=test,
        test=test,
        params={},
        bundle_bytes=0,
    )
    selection = Selection(
        metric="ndcg_at_10",
        tiebreak=tiebreak_of("ndcg_at_10"),
        selected=selection_of,
        baselines=[],
        rows=rows,
        plots={},
        validation_sample=500,
        validation_queries=500,
        min_validation_queries=50,
        gate_metrics=gate_metrics,
        ties_pass=ties_pass,
    )
    return rendered(version_description(selected, selection, reason, reported))


def test_every_name_is_one_cell_that_reads_as_written():
    results = [result(name, 0.1 * (i + 1)) for i, name in enumerate(NAMES)]
    page = rendered(markdown_table(table_rows(results, 100, selected=HYBRID)))
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL)[1:]
    cells = [[text_of(c) for c in re.findall(r"<td>(.*?)</td>", row, re.DOTALL)] for row in rows]
    assert [row[0] for row in cells] == NAMES
    assert {len(row) for row in cells} == {len(table_rows(results, 100, None)[0])}
    assert f"<strong>{html.escape(HYBRID, quote=False)}</strong>" in page  # the selected one


def test_the_gate_description_names_each_model_as_written():
    floor = EvidenceFloor(50, "validation queries", "min_validation_queries")
    gate = baseline_gate(
        result(HYBRID, 0.3), [result(n, 0.2, True) for n in NAMES[1:]], ["mrr_at_100"], floor, True
    )
    codes = [
        html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", rendered(gate.description))
    ]
    assert codes == NAMES


@pytest.mark.parametrize("use_case", ["next_track", "user_items"])
def test_the_registered_version_description_names_each_model_as_written(use_case):
    from orchestration.assets.next_track.registry import NEXT_TRACK
    from orchestration.assets.user_items.registry import USER_ITEMS

    figures = {"hit_rate_at_100": 0.2, "mrr_at_100": 0.1, "ndcg_at_10": 0.2}
    figures |= {"hit_rate_at_10": 0.3, "coverage_at_10": 0.4}
    test = {name: figures for name in NAMES}
    reason = "new data lineage: champion v1 was trained on '/data/my_*_files'"
    reported = {"next_track": NEXT_TRACK, "user_items": USER_ITEMS}[use_case].reported_metrics
    ties_pass = use_case == "next_track"
    gate = ("hit_rate_at_10",)
    page = version_page(
        HYBRID, test, result(HYBRID, 0.3), [{}] * 7, ties_pass, gate, reported, reason
    )
    cells = [text_of(c) for c in re.findall(r"<tr>\s*<td>(.*?)</td>", page, re.DOTALL)]
    assert cells == NAMES
    headline = text_of(re.search(r"<p>(.*?)</p>", page, re.DOTALL).group(1))
    assert headline.startswith(f"{HYBRID} (hybrid), selected on validation")
    assert headline.endswith(f"Promotion: {reason}.")
