"""Every recommender family by name: build one from config, reopen a saved one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.recommenders.base import PARAMS_FILE, Recommender, parse_params
from ml.recommenders.ease import Ease
from ml.recommenders.hybrid import Hybrid
from ml.recommenders.neighbourhood import ItemKNN, SessionKNN
from ml.recommenders.popularity import Popularity
from ml.recommenders.reranker import Reranker
from ml.recommenders.sequential_rules import SequentialRules
from ml.recommenders.slist import Slist
from ml.recommenders.two_tower import TwoTower
from ml.recommenders.word2vec import Word2Vec

FAMILIES: dict[str, type[Recommender]] = {
    family.family: family
    for family in (
        Popularity,
        SequentialRules,
        ItemKNN,
        SessionKNN,
        Word2Vec,
        Hybrid,
        Ease,
        TwoTower,
        Slist,
        Reranker,
    )
}


def family_class(family: str) -> type[Recommender]:
    try:
        return FAMILIES[family]
    except KeyError:
        known = sorted(FAMILIES)
        raise ValueError(f"unknown recommender family {family!r}; known: {known}") from None


def create(family: str, params: dict[str, Any], n_items: int) -> Recommender:
    cls = family_class(family)
    return cls(parse_params(cls.Params, params), n_items)


def load_recommender(folder: Path) -> Recommender:
    document = json.loads((folder / PARAMS_FILE).read_text(encoding="utf-8"))
    recommender = create(document["family"], document["params"], document["n_items"])
    recommender.load_state(folder)
    return recommender
