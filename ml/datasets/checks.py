"""Whether an encoded dataset can be trained and compared on: a sentence naming what is missing,
or None."""

from __future__ import annotations

import hashlib

from ml.datasets.next_track import NextTrackData
from ml.datasets.user_items import UserItemsData


def next_track_problem(data: NextTrackData) -> str | None:
    if len(data.train) == 0:
        return "the train split is empty: nothing to learn from"
    if len(data.validation) == 0 or len(data.test) == 0:
        return (
            f"the validation ({len(data.validation)}) or test ({len(data.test)}) split is empty: "
            "candidates cannot be compared; bring more playlists"
        )
    return None


def user_items_problem(data: UserItemsData) -> str | None:
    for fold in (data.validation, data.test):
        if len(fold.train) == 0 or fold.evaluation is None or len(fold.evaluation) == 0:
            return (
                f"the {fold.name} fold has no train rows or no users to evaluate: "
                "bring more interactions or loosen min_user_interactions"
            )
    return None


def user_items_fingerprint(data: UserItemsData) -> str:
    """One fingerprint of both folds."""
    both = f"{data.validation.fingerprint}/{data.test.fingerprint}"
    return hashlib.sha256(both.encode()).hexdigest()[:16]
