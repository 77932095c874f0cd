"""The next-track selection end to end on a toy split: when the validation sample decides and
nothing is re-scored, and when it does not and the finalists and baselines are re-scored on the
whole split (the reranker through its out-of-sample lists)."""

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

import ml.evaluation.next_track_selection as selection
from ml.artifacts import LocalArtifacts
from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.datasets.next_track import NextTrackData
from ml.evaluation.candidates import (
    CandidateResult,
    CandidateSpec,
    UnitData,
    evaluate,
    evaluate_lists,
    run_unit,
)
from ml.evaluation.next_track_selection import METRIC_KS, SecondStage, select_next_track
from ml.evaluation.selection import finalists
from ml.recommenders.base import Queries, TopK
from ml.recommenders.popularity import Popularity
from ml.sequences import UNKNOWN, Sequences
from orchestration.assets.next_track.candidates import BASELINES

N_ITEMS = 200
SAMPLE = 200  # of the 600 validation queries
BACKS_OFF = CandidateSpec(
    "sequential_rules", {"max_distance": 10}, [{"last_n": 1, "skip_unknown": True}]
)
SECOND_STAGE = SecondStage(
    hybrid=False,
    hybrid_depth=100,
    reranker=False,
    reranker_depth=100,
    min_unique_share=0.005,
    finalists=1,
    min_queries=SAMPLE,
)


def playlists(n: int, seed: int) -> list[list[int]]:
    """Each track followed by one of the five after it."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 6, size=(n, 9))
    first = rng.integers(N_ITEMS, size=(n, 1))
    return (np.cumsum(np.hstack([first, steps]), axis=1) % N_ITEMS).tolist()


def toy_data() -> NextTrackData:
    """2,000 train playlists and 600 validation queries, two in three of them ending on a track
    train never saw: the last-track baseline, which does not back off past it, finds little
    there, and a rule that backs off finds much more."""
    train = Sequences.from_lists(playlists(2_000, seed=1))
    held_out = playlists(600, seed=2)
    queries = [p[:-1] for p in held_out]
    for i in range(0, len(queries), 3):
        queries[i][-1], queries[i + 1][-1] = UNKNOWN, UNKNOWN
    validation = EvaluationSplit(
        "validation",
        Queries(Sequences.from_lists(queries)),
        Sequences.from_lists([[p[-1]] for p in held_out]),
    )
    counts = np.bincount(train.items, minlength=N_ITEMS)
    catalogue = Catalogue(
        pa.table({"key": [str(i) for i in range(N_ITEMS)], "train_count": counts})
    )
    empty = EvaluationSplit("test", Queries(Sequences.empty(0)), Sequences.empty(0))
    return NextTrackData(catalogue, train, validation, empty, "", pa.table({}))


def select(
    tmp_path,
    second_stage: SecondStage,
    said: list[str],
    candidates: tuple[CandidateSpec, ...] = (BACKS_OFF,),
    sample: int = SAMPLE,
) -> selection.NextTrackSelection:
    """The baselines and ``candidates`` (the rule that backs off), scored on the sample (the
    first ``sample`` validation queries) as the grid scores them, then selected."""
    data = toy_data()
    store = LocalArtifacts(tmp_path / "store")
    sample_rows = np.arange(sample)
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    unit_data = UnitData.next_track(
        data.train, data.validation.take(sample_rows), popularity, METRIC_KS
    )
    results = [
        r for spec in [*BASELINES, *candidates] for r in run_unit(spec, unit_data, store, "grid")
    ]
    return select_next_track(
        results,
        data,
        sample_rows,
        metric="ndcg_at_10",
        second_stage=second_stage,
        store=store,
        key=lambda name: f"second_stage/{name}",
        plot_path=lambda name: tmp_path / f"{name}.png",
        log=said.append,
    )


def test_one_finalist_clearly_ahead_on_the_sample_is_selected_on_it(tmp_path):
    said: list[str] = []
    chosen = select(tmp_path, SECOND_STAGE, said)
    assert chosen.sample_decided and chosen.measured_on == SAMPLE
    assert chosen.selected.name == "sequential_rules:w10_last1"
    assert any(line.startswith("the sample decides: sequential_rules:w10_last1") for line in said)
    assert not any(line.startswith("re-scored") for line in said)


def test_a_sample_under_the_gates_floor_does_not_decide_and_all_is_re_scored(tmp_path):
    """The same lead, on a sample under ``min_queries``: the finalist and both baselines are
    re-scored on all 600 validation queries, their figures those of the whole split."""
    said: list[str] = []
    chosen = select(tmp_path, replace(SECOND_STAGE, min_queries=SAMPLE + 1), said)
    assert not chosen.sample_decided and chosen.measured_on == 600
    assert not any(line.startswith("the sample decides") for line in said)
    assert sum(line.startswith("re-scored") for line in said) == 3
    data = toy_data()
    popularity = Popularity.from_counts(data.catalogue.train_counts)
    store = LocalArtifacts(tmp_path / "store")
    for result in [chosen.selected, *chosen.baselines]:
        whole, _ = evaluate(result.load(store), data.validation, popularity, METRIC_KS)
        assert result.metrics["hit_rate_at_10"] == pytest.approx(whole["hit_rate_at_10"])
        assert result.metrics["mrr_at_100"] == pytest.approx(whole["mrr_at_100"])


def test_a_re_scored_reranker_is_measured_on_its_out_of_sample_lists(tmp_path, monkeypatch):
    """Two finalists never decide on the sample: the reranker, learned on the sample, is
    re-scored through ``on_validation`` (out of fold on the sample, the served ranker on the
    rest), not by scoring the served ranker on queries it learned from."""
    calls = []
    on_validation = selection.on_validation

    def recorded(learned, validation, sample_rows, *args):
        calls.append((learned.result.name, len(validation), len(sample_rows)))
        return on_validation(learned, validation, sample_rows, *args)

    monkeypatch.setattr(selection, "on_validation", recorded)
    stage = replace(SECOND_STAGE, reranker=True, finalists=2)
    said: list[str] = []
    chosen = select(tmp_path, stage, said)
    assert not chosen.sample_decided and chosen.measured_on == 600
    reranker = next(r for r in chosen.results if r.family == "reranker")
    assert calls == [(reranker.name, 600, SAMPLE)]
    assert any(line.startswith(f"re-scored {reranker.name} on 600") for line in said)


def test_finalists_close_on_their_own_errors_but_not_on_the_paired_one_are_not_re_scored():
    """Three lists over the same 400 queries: the best finds the label first on 160; the second
    loses 20 of those (0.05 behind at NDCG@10, within two of each side's own standard errors
    combined, ~0.068, but 4.6 standard errors of the paired difference); the third loses 2
    (1.4 paired standard errors). ``finalists`` keeps all three; ``close_on_sample`` drops the
    second and says why, unless the best is a hybrid."""
    n, n_items = 400, 1_000
    labels = Sequences.from_lists([[i] for i in range(n)])
    split = EvaluationSplit("validation", Queries(Sequences.from_lists([[999]] * n)), labels)
    popularity = Popularity.from_counts(np.ones(n_items, dtype=np.int64))

    def lists(missed: int) -> TopK:
        ids = (np.arange(n)[:, None] + 500 + np.arange(100)[None, :]) % 998
        ids[: 160 - missed, 0] = np.arange(160 - missed)  # the label, first
        return TopK(ids.astype(np.int32), np.tile(-np.arange(100, dtype=np.float32), (n, 1)))

    tops, results = {}, []
    for name, missed in (("best:a", 0), ("far:b", 20), ("near:c", 2)):
        metrics, tops[name] = evaluate_lists(lists(missed), split, popularity, METRIC_KS)
        results.append(CandidateResult(name, name, "u", {}, {}, name, metrics, 0.0, 0.0))
    assert [r.name for r in finalists(results, "ndcg_at_10", 5)] == ["best:a", "near:c", "far:b"]

    def lists_of(result: CandidateResult) -> TopK:
        return tops[result.name]

    said: list[str] = []
    close = selection.close_on_sample(
        finalists(results, "ndcg_at_10", 5), split, lists_of, n_items, "ndcg_at_10", said.append
    )
    assert [r.name for r in close] == ["best:a", "near:c"]
    # a hybrid's lead was searched on the sample: it drops no one
    hybrid_first = [replace(results[0], family="hybrid"), *results[1:]]
    assert selection.close_on_sample(hybrid_first, split, lists_of, n_items, "ndcg_at_10") == (
        hybrid_first
    )
    assert said == [
        "far:b is no finalist: best:a leads it on the sample by 4.6 standard errors of the "
        "paired difference (ndcg_at_10 against far:b: +0.0500 ± 0.0109)"
    ]


def test_a_finalist_close_only_by_each_sides_own_errors_is_not_re_scored(tmp_path):
    """Three variants of the rule that backs off, all within two combined standard errors of
    the best on the 200 sampled queries: the one 2.5 standard errors of the paired difference
    behind is dropped and never re-scored; the one 1.9 behind is re-scored beside the best. On
    a sample that is the whole split nothing is re-scored, so no finalist is dropped."""
    rules = replace(
        BACKS_OFF,
        variants=[
            {"last_n": 1, "skip_unknown": True},
            {"last_n": 2, "recency_decay": 0.5, "skip_unknown": True},
            {"last_n": 2, "recency_decay": 0.3, "skip_unknown": True},
        ],
    )
    stage = replace(SECOND_STAGE, finalists=3)
    said: list[str] = []
    chosen = select(tmp_path / "sampled", stage, said, (rules,))
    dropped = [line for line in said if " is no finalist: " in line]
    assert len(dropped) == 1 and dropped[0].startswith(
        "sequential_rules:w10_last2_d0.5 is no finalist: sequential_rules:w10_last1 leads it on "
        "the sample by 2.5 standard errors of the paired difference"
    )
    re_scored = {line.split(" on ")[0] for line in said if line.startswith("re-scored ")}
    assert "re-scored sequential_rules:w10_last2_d0.5" not in re_scored
    assert {
        "re-scored sequential_rules:w10_last1",
        "re-scored sequential_rules:w10_last2_d0.3",
    } <= re_scored
    assert not chosen.sample_decided and chosen.measured_on == 600
    said.clear()
    whole = select(tmp_path / "whole", stage, said, (rules,), sample=600)
    assert whole.measured_on == 600 and not whole.sample_decided
    assert not [line for line in said if " is no finalist: " in line or "re-scored" in line]
