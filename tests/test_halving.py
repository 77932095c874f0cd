"""Successive halving: which units a rung screens, and what it stops, on a toy grid fitted for
real; and the time budget the rung estimates units for."""

from dataclasses import replace

import numpy as np

from ml.artifacts import LocalArtifacts
from ml.datasets.evaluation_split import EvaluationSplit
from ml.evaluation.budget import GridBudget, full_fit_estimate, schedule
from ml.evaluation.candidates import CandidateResult, CandidateSpec, UnitData
from ml.evaluation.halving import (
    Rung,
    RungDecision,
    RungEntry,
    RungReferences,
    decide,
    fit_references,
    screen_candidate,
)
from ml.recommenders.base import Queries
from ml.recommenders.popularity import Popularity
from ml.sequences import Sequences
from orchestration.assets.grid import RungVerdicts, UnitOutcome
from orchestration.config import (
    NEIGHBOURHOOD_GRID,
    SEQUENTIAL_RULES_GRID,
    SLIST_GRID,
    WORD2VEC_GRID,
    CandidateConfig,
    HalvingConfig,
)

N_ITEMS = 200


def playlists(n: int, seed: int) -> list[list[int]]:
    """Each track is followed by one of the five after it: a rule list that keeps one successor
    per track finds the next track about a fifth as often as one that keeps them all."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(n):
        track = int(rng.integers(N_ITEMS))
        playlist = [track]
        for _ in range(9):
            track = (track + int(rng.integers(1, 6))) % N_ITEMS
            playlist.append(track)
        result.append(playlist)
    return result


RUNG = Rung(
    share=0.25, margin_se=2.0, metric="ndcg_at_10", min_train_rows=0, min_unique_share=0.005
)
REFERENCES = [  # the rules family's reference, and one of another family
    CandidateSpec("sequential_rules", {"max_distance": 10}, [{"last_n": 1, "skip_unknown": False}]),
    CandidateSpec("item_knn", {"neighbours": 50}, [{"last_n": 1}]),
]


def rules(keep: int, distance: int = 10) -> CandidateSpec:
    return CandidateSpec(
        "sequential_rules", {"max_distance": distance, "keep_per_item": keep}, [{"last_n": 1}]
    )


def toy_split() -> tuple[Sequences, EvaluationSplit, Popularity]:
    """2,000 train playlists of 10 tracks (the rung fits on 500 of them) and 500 queries."""
    train = Sequences.from_lists(playlists(2_000, seed=1))
    held_out = playlists(500, seed=2)
    validation = EvaluationSplit(
        "validation",
        Queries(Sequences.from_lists([p[:-1] for p in held_out])),
        Sequences.from_lists([[p[-1]] for p in held_out]),
    )
    popularity = Popularity(n_items=N_ITEMS)
    popularity.fit(train)
    return train, validation, popularity


def screened_decisions(specs: list[CandidateSpec], folder) -> dict:
    """Each unit fitted at the rung and compared with the last-track rule there, decided."""
    train, validation, popularity = toy_split()
    assert RUNG.screened(specs, len(train.items)) == specs
    store = LocalArtifacts(folder)
    data = UnitData.next_track(train, validation, popularity)
    references = fit_references(REFERENCES, RUNG, data)
    references.save(folder / "references")
    entries = {s.unit_name: screen_candidate(s, RUNG, data, store, "rung") for s in specs}
    assert all(e.train_rows == 500 * 10 for e in entries.values())
    return {
        d.unit: d for d in decide(entries, RungReferences.load(folder / "references"), RUNG, store)
    }


def test_a_rung_stops_the_clearly_worse_unit_and_sends_its_rivals_on(tmp_path):
    specs = [rules(keep=500), rules(keep=500, distance=20), rules(keep=1)]
    decisions = screened_decisions(specs, tmp_path)
    worse, best, close = (decisions[s.unit_name] for s in reversed(specs))
    assert not worse.promoted and best.promoted and close.promoted
    assert worse.best_value - worse.value > worse.margin > 0
    assert "stopped at the rung" in worse.reason and specs[0].unit_name in worse.reason


def test_a_family_below_the_references_that_adds_nothing_to_their_lists_stops_whole(tmp_path):
    """Item-kNN fitted on the same rung finds the successors too: a rules family that keeps one
    successor per track scores far below it and its lists hold no next track item-kNN's do
    not, so it could neither be selected nor pooled: both units stop. The rules family's own
    reference is not among what it is judged against."""
    specs = [rules(keep=1), rules(keep=1, distance=20)]
    decisions = screened_decisions(specs, tmp_path)
    assert not any(d.promoted for d in decisions.values())
    for d in decisions.values():
        assert "against the reference item_knn:" in d.reason
        assert (
            "that none of item_knn:" in d.reason
            and "sequential_rules:" not in d.reason.split("none of")[1]
        )
        assert "holds for 0.00% of the queries" in d.reason


def test_a_unit_meant_for_large_data_is_screened_on_the_share_not_refused(tmp_path):
    """Its min_train_rows is met by the whole split, not by the rung's quarter of it: the rung
    stands in for its full fit."""
    train, validation, popularity = toy_split()
    large = replace(rules(keep=500), min_train_rows=len(train.items))
    assert RUNG.screened([large, rules(keep=1)], len(train.items)) == [large, rules(keep=1)]
    data = UnitData.next_track(train, validation, popularity)
    entry = screen_candidate(large, RUNG, data, LocalArtifacts(tmp_path), "rung")
    assert entry.train_rows == len(train.items) // 4
    assert [r.unit for r in entry.results] == [large.unit_name]
    assert entry.results[0].metrics["hit_rate_at_100"] > 0


def test_the_rung_trains_on_a_seeded_share_of_the_playlists_in_their_order():
    train = Sequences.from_lists([[i, i + 1] for i in range(0, 200, 2)])
    rung = Rung(0.25, 2.0, "ndcg_at_10", min_train_rows=0, min_unique_share=0.005, seed=7)
    sample = rung.train(train)
    assert len(sample) == 25
    firsts = [p[0] for p in sample.to_lists()]
    assert firsts == sorted(firsts) and sample.to_lists() == rung.train(train).to_lists()
    assert set(firsts) <= set(range(0, 200, 2))


def test_only_families_with_several_units_runnable_at_this_size_are_screened():
    rung = Rung(0.25, 2.0, "ndcg_at_10", min_train_rows=1_000, min_unique_share=0.005)
    lone = CandidateSpec("slist", {"max_items": 100})
    too_big = CandidateSpec("sequential_rules", {"max_distance": 20}, max_train_rows=500)
    pair = [rules(keep=500), rules(keep=1)]
    assert rung.screened([lone, *pair], train_rows=999) == []
    assert rung.screened([lone, *pair], train_rows=1_000) == pair
    # the other rules unit cannot run at this size, so the first has no rival
    assert rung.screened([lone, pair[0], too_big], train_rows=1_000) == []


def test_at_full_kaggle_scale_the_default_grids_fit_one_unit_a_family_and_screen_none():
    """On the full Kaggle-shaped file's 8.9M train rows each family has one unit that runs (the
    rules within 20 positions do not run there) and no neighbourhood unit runs, so the rung
    screens nothing; at 10% of it (885,016 train rows) the rules' two units are screened."""
    rung = HalvingConfig().rung(0)
    for grid in (WORD2VEC_GRID, SEQUENTIAL_RULES_GRID, NEIGHBOURHOOD_GRID, SLIST_GRID):
        specs = [CandidateConfig(**unit).spec() for unit in grid]
        runnable = [s for s in specs if s.size_refusal(8_924_118) is None]
        assert len(runnable) == len({s.family for s in runnable})
        assert (len(runnable) == 0) == (grid is NEIGHBOURHOOD_GRID)
        assert rung.screened(specs, 8_924_118) == []
    rules_units = [CandidateConfig(**unit).spec() for unit in SEQUENTIAL_RULES_GRID]
    assert len(rules_units) == 2 and rung.screened(rules_units, 885_016) == rules_units


def test_rung_references_are_fitted_only_for_a_run_whose_grids_screen():
    """With the default grids nothing is screened at full scale, so the references are not
    fitted; a run config that gives a grid two units of a family that run there screens them;
    at 10% the defaults screen."""
    from orchestration.assets.next_track.candidates import grids_screen

    rung = HalvingConfig().rung(0)
    assert not grids_screen({}, rung, 8_924_118)
    assert grids_screen({}, rung, 885_016)
    two_rules = [
        {"family": "sequential_rules", "params": {"max_distance": 10}},
        {"family": "sequential_rules", "params": {"max_distance": 10, "keep_per_item": 1}},
    ]
    config = {"ops": {"sequential_rules_candidates": {"config": {"candidates": two_rules}}}}
    assert grids_screen(config, rung, 8_924_118)
    assert not grids_screen(config, rung, rung.min_train_rows - 1)


def test_a_budgeted_run_screens_every_unit_that_can_run_at_any_size():
    """The rung is where a unit's time estimate comes from: with a budget, lone units and
    splits under ``min_train_rows`` are screened too; a unit refused at this size is not."""
    rung = Rung(0.25, 2.0, "ndcg_at_10", min_train_rows=1_000, min_unique_share=0.005)
    lone = CandidateSpec("slist", {"max_items": 100})
    too_big = CandidateSpec("sequential_rules", {"max_distance": 20}, max_train_rows=500)
    assert rung.screened([lone, rules(keep=500), too_big], 999, budgeted=True) == [
        lone,
        rules(keep=500),
    ]


SLOW, FAST, STOPPED = (replace(rules(keep=500), label=x) for x in ("slow", "fast", "stopped"))


def at_rung(spec: CandidateSpec, fit_seconds: float, eval_seconds: list[float]) -> RungEntry:
    """A unit's entry at the rung: one fit, a row per scoring variant."""
    unit = spec.unit_name
    results = [
        CandidateResult(
            name=f"sequential_rules:{unit}:{i}",
            family="sequential_rules",
            unit=unit,
            params={},
            variant={},
            model_key=f"rungs/{unit}",
            metrics={"ndcg_at_10": 0.1},
            fit_seconds=fit_seconds,
            eval_seconds=seconds,
        )
        for i, seconds in enumerate(eval_seconds)
    ]
    return RungEntry(results, train_rows=500, top_key=f"rungs/{unit}__best_lists")


def decision(spec: CandidateSpec, value: float, promoted: bool = True) -> RungDecision:
    unit = spec.unit_name
    return RungDecision(unit, "sequential_rules", unit, value, 0.3, 0.01, promoted, "")


BUDGET_ENTRIES = {
    SLOW.unit_name: at_rung(SLOW, fit_seconds=2.0, eval_seconds=[0.5, 0.5]),  # (2 + 1) / 0.25
    FAST.unit_name: at_rung(FAST, fit_seconds=0.25, eval_seconds=[0.25]),  # (0.25 + 0.25) / 0.25
    STOPPED.unit_name: at_rung(STOPPED, fit_seconds=0.1, eval_seconds=[0.1]),
}
BUDGET_DECISIONS = [decision(SLOW, 0.3), decision(FAST, 0.2), decision(STOPPED, 0.1, False)]


def test_units_go_on_best_value_per_second_first_each_with_its_rungs_estimate():
    """Fitting and scoring grow with the playlists (the rung fitted a quarter of them); the
    stopped unit is not scheduled."""
    scheduled = schedule(BUDGET_DECISIONS, BUDGET_ENTRIES, share=0.25)
    assert [(s.unit, s.estimate) for s in scheduled] == [
        (FAST.unit_name, 2.0),
        (SLOW.unit_name, 12.0),
    ]
    assert full_fit_estimate(BUDGET_ENTRIES[SLOW.unit_name], 0.5) == 6.0


def test_a_budgeted_run_never_starts_a_unit_it_cannot_finish_in_the_time_left():
    """The grid's deadline is at 100 s and a fit starts with 1.5 times its estimate left: at
    95 s the fast unit (2 s by its rung, 3 s needed) starts and the slow one (12 s) does not,
    keeping its fit at the rung; at 97.5 s the fast one does not either. A unit the rung did
    not see, or a run without a budget, starts as before."""
    scheduled = schedule(BUDGET_DECISIONS, BUDGET_ENTRIES, share=0.25)
    outcomes = {
        unit: UnitOutcome(unit, "sequential_rules", entry.results, rung=entry)
        for unit, entry in BUDGET_ENTRIES.items()
    }
    budget = GridBudget(minutes=1.0, after_grid_share=0.5, estimate_margin=1.5)
    estimates = {s.unit: s.estimate for s in scheduled}
    verdicts = RungVerdicts(BUDGET_DECISIONS, [], estimates, budget, 100.0, outcomes)
    assert verdicts.within_budget(FAST, now=95.0) is None
    assert verdicts.within_budget(FAST, now=97.0) is None
    kept = verdicts.within_budget(SLOW, now=95.0)
    slow = BUDGET_ENTRIES[SLOW.unit_name]
    assert kept.results == slow.results and kept.rung is slow
    assert kept.skipped == (
        "time budget: its rung puts its full fit at 12 s and the grid has 5 s left (a fit "
        "starts with 1.5 times its estimate left); its fit at the rung stands in"
    )
    assert verdicts.within_budget(FAST, now=97.5).skipped.startswith("time budget")
    assert verdicts.within_budget(rules(keep=7), now=99.5) is None
    assert replace(verdicts, budget=None).within_budget(SLOW, now=1e9) is None


def test_a_budgets_deadline_keeps_its_share_for_the_steps_after_the_grid():
    assert GridBudget(minutes=10.0, after_grid_share=0.6).deadline(run_started=1000.0) == 1240.0
