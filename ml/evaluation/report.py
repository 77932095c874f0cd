"""What people read: the validation table and the hit rate@K plot (files, for MLflow and the
Dagster UI alike), and Markdown in which every name reads as written (a hybrid's `*` is not
emphasis, a `|` does not split a table cell)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ml.evaluation.candidates import CandidateResult

# Beside each next-track model's accuracy, what a researcher reads before trusting it, at the
# top the serving table holds: the hit rate on warm labels, catalogue coverage and popularity bias.
REPORTING_COLUMNS = ["warm_hit_rate_at_10", "coverage_at_10", "mean_popularity_at_10"]


def table_columns(k: int) -> list[str]:
    """Next-track columns: hit rate at 10, 20, 100 and ``k``; MRR@k; NDCG at 10 (the top the
    serving table holds) and ``k``; coverage@k; then ``REPORTING_COLUMNS``."""
    ks = sorted({10, 20, 100, k})
    ndcg = [f"ndcg_at_{x}" for x in sorted({10, k})]
    accuracy = [f"hit_rate_at_{x}" for x in ks] + [f"mrr_at_{k}", *ndcg, f"coverage_at_{k}"]
    return accuracy + REPORTING_COLUMNS


USER_ITEMS_COLUMNS = ["ndcg_at_10", "hit_rate_at_10", "recall_at_10", "mrr_at_10", "coverage_at_10"]


def table_rows(
    results: list[CandidateResult],
    k: int,
    selected: str | None,
    columns: list[str] | None = None,
    errors_of: tuple[str, ...] | None = None,
) -> list[dict]:
    """One flat row per candidate: family, name, metrics (``columns``, default the next-track
    ones at ``k``), the standard errors of ``errors_of`` (default hit rate@k), seconds, and the
    selection mark."""
    columns = columns or table_columns(k)
    errors = dict.fromkeys(errors_of or (f"hit_rate_at_{k}",))
    rows = []
    for result in results:
        row = {
            "candidate": result.name,
            "family": result.family,
            "role": "baseline"
            if result.baseline
            else ("selected" if result.name == selected else "candidate"),
        }
        row.update({c: result.metrics.get(c, np.nan) for c in columns})
        row.update(
            {
                f"{m}_stderr": result.metrics[f"{m}_stderr"]
                for m in errors
                if f"{m}_stderr" in result.metrics
            }
        )
        row["queries"] = int(result.metrics["queries"])  # a count: 3415, not 3415.0000
        row["fit_seconds"] = result.fit_seconds
        row["eval_seconds"] = result.eval_seconds
        rows.append(row)
    return rows


def display_number(value: float) -> float:
    """``value`` rounded for reading: four significant digits (0.6015, 12.35, 0.0001235), but
    never fewer digits than its whole part (3415.3 -> 3415.0); NaN and infinities as they are."""
    if not math.isfinite(value) or value == 0:
        return value
    return round(value, max(0, 3 - math.floor(math.log10(abs(value)))))


# What CommonMark and GitHub's tables read as markup within a line: escapes, code, emphasis,
# links and images, HTML and entities, cell borders, strikethrough.
MARKUP = re.compile(r"([\\`*_\[\]<>&|~])")


def markdown_text(text: str) -> str:
    """``text`` that renders as written: its markup characters backslash-escaped (CommonMark
    allows a backslash before any ASCII punctuation)."""
    return MARKUP.sub(r"\\\1", text)


def markdown_code(text: str) -> str:
    """``text`` as an inline code span: rendered as written, and plain to read where it is not
    rendered (a check's description also goes to the console)."""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def markdown_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = [
        "| " + " | ".join(markdown_text(c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if isinstance(value, float):
                cells.append(f"{value:.1f}" if column.endswith("seconds") else f"{value:.4f}")
            else:
                text = markdown_text(str(value))
                cells.append(f"**{text}**" if row.get("role") == "selected" else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_description(headline: str, rows: list[dict]) -> str:
    """A sentence and a table, as a registered version's description."""
    return f"{markdown_text(headline)}\n\n{markdown_table(rows)}"


def plot_hit_rate_curves(curves: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Hit rate at K = 1..len(curve) for a few models, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        axis.plot(np.arange(1, len(curve) + 1), curve, label=name)
    axis.set_xlabel("K")
    axis.set_ylabel("hit rate@K")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return saved(figure, path, 90)


def plot_validation_bars(rows: list[dict], metric: str, path: Path) -> Path:
    """Every candidate's validation ``metric`` as a horizontal bar; baselines grey, the selected
    one highlighted."""
    colours = {"baseline": "#999999", "selected": "#d9534f", "candidate": "#4f7cac"}
    bars = [(r["candidate"], r[metric], colours[r["role"]]) for r in rows]
    return horizontal_bars(bars, f"validation {metric}", path)


def plot_feature_importances(importances: dict[str, float], path: Path, most: int = 25) -> Path:
    """A reranker's ``most`` most useful features by total gain."""
    shown = sorted(importances.items(), key=lambda item: -item[1])[:most]
    bars = [(name, gain, "#4f7cac") for name, gain in shown]
    return horizontal_bars(bars, "total gain in the served ranker", path)


def horizontal_bars(bars: list[tuple[str, float, str]], label: str, path: Path) -> Path:
    """(name, value, colour) bars top to bottom, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 0.3 * len(bars) + 1.2))
    axis.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    axis.invert_yaxis()
    axis.set_xlabel(label)
    axis.tick_params(axis="y", labelsize=7)
    return saved(figure, path, 80)


def query_length_rows(
    by_model: dict[str, dict[str, dict[str, float]]], metrics: tuple[str, ...]
) -> list[dict]:
    """One row per model and query-length bucket (``metrics_by_query_length`` of each model, in
    the order given): the queries in the bucket and ``metrics``."""
    return [
        {
            "model": model,
            "query_length": bucket,
            "queries": int(figures["queries"]),
            **{m: figures[m] for m in metrics},
        }
        for model, buckets in by_model.items()
        for bucket, figures in buckets.items()
    ]


def plot_by_query_length(rows: list[dict], metric: str, path: Path) -> Path:
    """``metric`` of each model (a bar each) in each query-length bucket (a group each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    buckets = list(dict.fromkeys(r["query_length"] for r in rows))
    value = {(r["model"], r["query_length"]): r[metric] for r in rows}
    width = 0.8 / max(len(models), 1)
    figure, axis = plt.subplots(figsize=(8, 5))
    for i, model in enumerate(models):
        heights = [value.get((model, b), np.nan) for b in buckets]
        axis.bar(np.arange(len(buckets)) + i * width, heights, width, label=model)
    axis.set_xticks(np.arange(len(buckets)) + width * (len(models) - 1) / 2, buckets)
    axis.set_xlabel("tracks in the query")
    axis.set_ylabel(metric)
    axis.legend(fontsize=7, loc="upper left")
    axis.grid(alpha=0.3, axis="y")
    return saved(figure, path, 90)


def saved(figure, path: Path, dpi: int) -> Path:
    """``figure`` laid out, written as a PNG at ``path`` and closed (pyplot keeps open figures)."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path
