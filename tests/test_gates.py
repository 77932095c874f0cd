"""The gates a selected model must pass before it is registered: beat every baseline, on an
evaluation set large enough to tell them apart, its size and standard errors in the
description."""

import pytest

from ml.evaluation.candidates import CandidateResult
from ml.evaluation.selection import EvidenceFloor, beats_baselines

USERS = EvidenceFloor(50, "validation users", "min_validation_users")


def result(name: str, ndcg: float, users: int, baseline: bool = False) -> CandidateResult:
    metrics = {"ndcg_at_10": ndcg, "ndcg_at_10_stderr": 0.05, "queries": float(users)}
    return CandidateResult(name, name, "unit", {}, {}, "", metrics, 0.0, 0.0, baseline=baseline)


def test_a_model_that_beats_popularity_on_one_user_does_not_pass():
    """The issue's run: 0.33 against 0 on a single validation user."""
    gate = beats_baselines(
        result("ease", 0.33, 1), [result("popularity", 0.0, 1, True)], "ndcg_at_10", USERS
    )
    assert gate.passed is False
    assert "too few validation users to tell it from the baselines: 1" in gate.description
    assert "the minimum is 50 (min_validation_users)" in gate.description
    assert "0.3300 ± 0.0500" in gate.description


@pytest.mark.parametrize(("users", "ndcg", "passed"), [(50, 0.33, True), (500, 0.0, False)])
def test_enough_users_and_a_better_figure_pass(users, ndcg, passed):
    gate = beats_baselines(
        result("ease", ndcg, users), [result("popularity", 0.1, users, True)], "ndcg_at_10", USERS
    )
    assert gate.passed is passed
    assert f"validation users: {users:,}" in gate.description and "too few" not in gate.description
