"""Scoring recommenders on a split, choosing the best candidate, and reporting the comparison."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

from ml.metrics import next_track_metrics
from ml.warehouse import Split

Recommend = Callable[[list[list[str]], int], list[list[str]]]


def evaluate(
    recommend: Recommend,
    split: Split,
    catalog_size: int,
    ks: tuple[int, ...],
    vocabulary: dict[str, int] | None = None,
) -> dict[str, float]:
    """Metrics at each K; with a vocabulary, also the share of queries whose last track the
    model does not know."""
    recommendations = recommend(split.sequences, max(ks))
    metrics = next_track_metrics(recommendations, split.labels, catalog_size, ks)
    if vocabulary is not None:
        unknown = sum(1 for q in split.sequences if q[-1] not in vocabulary)
        metrics["unknown_last_track_share"] = unknown / len(split.sequences)
    return metrics


def best_candidate(results: dict[str, dict[str, float]], k: int) -> str:
    """Highest hit rate@K, then MRR@K, then name (deterministic)."""
    return min(
        results,
        key=lambda name: (-results[name][f"hit_rate_at_{k}"], -results[name][f"mrr_at_{k}"], name),
    )


def markdown_table(results: dict[str, dict[str, float]], columns: list[str]) -> str:
    lines = ["| candidate | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in results.items():
        cells = [f"{metrics[c]:.4f}" if c in metrics else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart_markdown(results: dict[str, dict[str, float]], metric: str) -> str:
    """A horizontal bar chart as an inline PNG, for Dagster's markdown metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    values = [results[n][metric] for n in names]
    figure, axis = plt.subplots(figsize=(8, 0.35 * len(names) + 1))
    axis.barh(names, values, color="#4f7cac")
    axis.invert_yaxis()
    axis.set_xlabel(metric)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{metric}](data:image/png;base64,{encoded})"
