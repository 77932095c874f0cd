"""A time budget for the grid: each unit's full fit is estimated from its fit at the rung, the
units start in order of expected value per second, and a unit starts only if its estimate ends
before the grid's deadline. A unit that does not start keeps what it found at the rung."""

from __future__ import annotations

from dataclasses import dataclass

from ml.evaluation.halving import RungDecision, RungEntry


@dataclass(frozen=True)
class GridBudget:
    """A run's time budget, the share of it kept for the steps after the grid (the second
    stage, selection, registration and the serving table, which the rung cannot estimate), and
    how many times its estimate a full fit must find left to start (the estimate is rough)."""

    minutes: float
    after_grid_share: float
    estimate_margin: float = 1.5

    def deadline(self, run_started: float) -> float:
        """When the grid's last unit must end, in ``time.time()`` seconds."""
        return run_started + self.minutes * 60 * (1 - self.after_grid_share)

    def refusal(self, estimate: float, deadline: float, now: float) -> str | None:
        """Why a unit whose full fit should take ``estimate`` seconds does not start at
        ``now``: ``estimate_margin`` times it is more than the grid has left."""
        left = deadline - now
        if estimate * self.estimate_margin <= left:
            return None
        return (
            f"time budget: its rung puts its full fit at {estimate:.0f} s and the grid has "
            f"{max(left, 0.0):.0f} s left (a fit starts with {self.estimate_margin:g} times its "
            "estimate left); its fit at the rung stands in"
        )


def full_fit_estimate(entry: RungEntry, share: float) -> float:
    """Seconds the unit's full fit and scoring should take: both grow with the playlists (the
    rung fitted on ``share`` of them), scoring because the vocabulary a model scores grows
    with them. Linear: an overestimate for a family bounded by its vocabulary, an
    underestimate where each token costs more in a larger vocabulary (docs/benchmarks.md)."""
    fit = entry.results[0].fit_seconds  # one fit, shared by the variants
    return (fit + sum(r.eval_seconds for r in entry.results)) / share


@dataclass(frozen=True)
class ScheduledUnit:
    unit: str
    estimate: float  # seconds, full fit and scoring
    value: float  # its best variant at the rung, on the rung's metric

    @property
    def value_per_second(self) -> float:
        return self.value / max(self.estimate, 1e-9)


def schedule(
    decisions: list[RungDecision], entries: dict[str, RungEntry], share: float
) -> list[ScheduledUnit]:
    """The units that went on from the rung, best expected value per second first."""
    scheduled = [
        ScheduledUnit(d.unit, full_fit_estimate(entries[d.unit], share), d.value)
        for d in decisions
        if d.promoted
    ]
    return sorted(scheduled, key=lambda s: -s.value_per_second)
