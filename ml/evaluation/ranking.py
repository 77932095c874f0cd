"""The one rule that orders candidates, for both use cases: best first by a metric, then a
tie-break metric; on equal figures a single model before a hybrid (which costs more to serve and
adds nothing measured: its search can weigh all but one component zero), then by name, so equal
figures always choose the same way."""

from __future__ import annotations

from typing import Protocol, TypeVar

from ml.recommenders.hybrid import Hybrid


class Ranked(Protocol):
    """A candidate's result in either use case (the pipeline's CandidateResult, a FoldResult)."""

    name: str
    family: str
    metrics: dict[str, float]


R = TypeVar("R", bound=Ranked)


def ranked(results: list[R], metric: str, tiebreak: str) -> list[R]:
    return sorted(
        results,
        key=lambda r: (-r.metrics[metric], -r.metrics[tiebreak], r.family == Hybrid.family, r.name),
    )
