"""The user-items dataset: interaction_splits and dim_items read once and encoded for the families.

A *fold* is what one model trains on and is judged by. Its catalogue is the items of its train
rows (sorted by id; ``train_count`` is their popularity there), its users the users of those rows
(sorted by id), and row i of ``train`` is user i's interactions in time order. Its evaluation
split holds one query per user with at least one label in the evaluated period: ``history`` is
everything the user did in the train rows, ``users`` the user's row, labels the relevant items of
the period (time order).

The protocol: candidates train on the train period and are compared on validation
(``validation`` fold); the selected configuration is refit on train + validation and scored once
on test (``test`` fold), so the test model sees everything before the last period, as in the
published protocol. dbt already dropped labels of users and items a fold's model cannot know.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from ml.catalogue import Catalogue
from ml.datasets.evaluation_split import EvaluationSplit
from ml.recommenders.base import Queries
from ml.sequences import UNKNOWN, Sequences
from ml.warehouse import read_only

PERIODS = ("train", "validation", "test")
SUMMARY_FILE = "fold.json"
USERS_FILE = "users.parquet"


@dataclass(frozen=True)
class UserItemsFold:
    name: str
    catalogue: Catalogue  # key = item_id, title, year, genres, train_count
    users: list[str]  # user id of each train row
    train: Sequences
    train_times: np.ndarray  # float64 epoch seconds (UTC) of every entry of train.items
    evaluation: EvaluationSplit | None  # queries carry user rows (-1: a user train lacks)
    fingerprint: str  # sha256 of everything the models see

    @property
    def n_items(self) -> int:
        return len(self.catalogue)

    def item_features(self) -> tuple[sp.csr_matrix, list[str]]:
        """items x features, 1 where the item has it: each genre, and the release decade."""
        genres = self.catalogue.table.column("genres").to_pylist()
        years = self.catalogue.table.column("year").to_pylist()
        tokens = [
            [f"genre:{g}" for g in (item_genres or [])]
            + ([f"decade:{year // 10 * 10}s"] if year is not None else [])
            for item_genres, year in zip(genres, years, strict=True)
        ]
        names = sorted({t for item in tokens for t in item})
        column = {name: j for j, name in enumerate(names)}
        rows = [i for i, item in enumerate(tokens) for _ in item]
        columns = [column[t] for item in tokens for t in item]
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(self.n_items, len(names)),
        )
        return matrix, names

    def query_user_ids(self) -> list[str | None]:
        """The user id of each evaluation query."""
        assert self.evaluation is not None and self.evaluation.queries.users is not None
        return [self.users[u] if u >= 0 else None for u in self.evaluation.queries.users]

    def summary(self) -> dict:
        summary = {
            "fold": self.name,
            "fingerprint": self.fingerprint,
            "items": self.n_items,
            "users": len(self.users),
            "train_rows": len(self.train.items),
        }
        if self.evaluation is not None:
            summary["queries"] = len(self.evaluation)
            summary["labels"] = len(self.evaluation.labels.items)
        return summary

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.catalogue.save(folder)
        pq.write_table(pa.table({"user_id": self.users}), folder / USERS_FILE)
        self.train.save(folder, "train")
        np.save(folder / "train_times.npy", self.train_times)
        if self.evaluation is not None:
            self.evaluation.save(folder)
        (folder / SUMMARY_FILE).write_text(json.dumps(self.summary(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> UserItemsFold:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
        evaluated = "queries" in summary
        return cls(
            summary["fold"],
            Catalogue.load(folder),
            pq.read_table(folder / USERS_FILE).column("user_id").to_pylist(),
            Sequences.load(folder, "train"),
            np.load(folder / "train_times.npy", mmap_mode="r"),
            EvaluationSplit.load(folder, summary["fold"]) if evaluated else None,
            summary["fingerprint"],
        )


@dataclass(frozen=True)
class UserItemsData:
    validation: UserItemsFold  # train period -> validation labels: choose the model
    test: UserItemsFold  # train + validation -> test labels: refit the chosen one, score once


def read_user_items_data(warehouse: Path) -> UserItemsData:
    return UserItemsData(
        validation=read_fold(warehouse, "validation", ("train",), "validation"),
        test=read_fold(warehouse, "test", ("train", "validation"), "test"),
    )


def read_fold(
    warehouse: Path, name: str, train_periods: tuple[str, ...], evaluated: str | None
) -> UserItemsFold:
    """A fold training on ``train_periods``, evaluated on the labels of ``evaluated`` (None for
    a fold that only trains, e.g. the final refit on every period for serving)."""
    unknown = set(train_periods) - set(PERIODS) | ({evaluated} - set(PERIODS) - {None})
    if unknown:
        raise ValueError(f"unknown periods {sorted(unknown)}; interaction_splits has {PERIODS}")
    periods = ", ".join(f"'{p}'" for p in train_periods)
    encoded = f"""
        with fold as (select * from interaction_splits where split in ({periods})),
        users as (
            select user_id, cast(row_number() over (order by user_id) - 1 as integer) as row
            from (select distinct user_id from fold)
        ),
        items as (
            select item_id, cast(row_number() over (order by item_id) - 1 as integer) as id
            from (select distinct item_id from fold)
        )
    """
    with read_only(warehouse) as connection:
        users = connection.sql(encoded + "select user_id from users order by row").fetchall()
        catalogue = connection.sql(
            encoded
            + """
            select
                items.item_id as key, dim_items.title, dim_items.year, dim_items.genres,
                count(*) as train_count
            from items
            join fold using (item_id)
            left join dim_items using (item_id)
            group by items.id, items.item_id, dim_items.title, dim_items.year, dim_items.genres
            order by items.id
            """
        ).to_arrow_table()
        rows = connection.sql(
            encoded
            + """
            select users.row, items.id, epoch_us(fold.timestamp) / 1e6 as seconds
            from fold join users using (user_id) join items using (item_id)
            order by users.row, fold.timestamp, fold.row_id
            """
        ).fetchnumpy()
        labels = None
        if evaluated is not None:
            labels = connection.execute(
                encoded
                + """
                select coalesce(users.row, -1) as row, coalesce(items.id, -1) as id,
                    splits.user_id
                from interaction_splits as splits
                left join users using (user_id)
                left join items using (item_id)
                where splits.split = ? and splits.is_label
                order by splits.user_id, splits.timestamp, splits.row_id
                """,
                [evaluated],
            ).fetchnumpy()
    user_ids = [u for (u,) in users]
    train = Sequences.from_lengths(
        rows["id"].astype(np.int32), np.bincount(rows["row"], minlength=len(user_ids))
    )
    evaluation = _evaluation(evaluated, labels, train) if labels is not None else None
    fingerprint = _fingerprint(catalogue, train, rows["seconds"], evaluation)
    return UserItemsFold(
        name, Catalogue(catalogue), user_ids, train, rows["seconds"], evaluation, fingerprint
    )


def read_interacting_users(warehouse: Path) -> list[str]:
    """Every user of the clean interactions (``stg_interactions``), sorted: users below
    ``min_user_interactions``, whom no model trains on, included."""
    with read_only(warehouse) as connection:
        rows = connection.sql("select distinct user_id from stg_interactions order by 1")
        return [user for (user,) in rows.fetchall()]


def read_user_histories(
    warehouse: Path, users: list[str] | pa.Array, catalogue: Catalogue
) -> Sequences:
    """Everything each of ``users`` has among the clean interactions (``stg_interactions``:
    every period of ``interaction_splits``, and the rows of users below
    ``min_user_interactions``) as ``catalogue`` ids in time order; row i is ``users[i]``. Items
    the catalogue lacks are left out: no model over it can recommend them anyway. What a
    user-items bundle and the ``user_recommendations`` table exclude (``fold.users,
    fold.catalogue`` when making the bundle; every user and ``bundle.catalogue`` to refresh them
    from a newer warehouse)."""
    user_rows = pa.table({"user_id": users, "row": np.arange(len(users), dtype=np.int64)})
    ids = np.arange(len(catalogue), dtype=np.int32)
    item_ids = pa.table({"item_id": catalogue.keys, "id": ids})
    with read_only(warehouse) as connection:
        connection.register("user_rows", user_rows)
        connection.register("item_ids", item_ids)
        rows = connection.sql(
            """
            select user_rows.row, item_ids.id
            from stg_interactions
            join user_rows using (user_id)
            join item_ids using (item_id)
            order by user_rows.row, stg_interactions.timestamp, stg_interactions.row_id
            """
        ).fetchnumpy()
    lengths = np.bincount(rows["row"].astype(np.int64), minlength=len(users))
    return Sequences.from_lengths(rows["id"].astype(np.int32), lengths)


def _evaluation(name: str, labels: dict[str, np.ndarray], train: Sequences) -> EvaluationSplit:
    """One query per user with a label: its train history and its labels in time order."""
    user_ids = labels["user_id"]
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]]) if len(user_ids) else []
    lengths = np.diff(np.r_[starts, len(user_ids)]).astype(np.int64)
    rows = labels["row"][starts].astype(np.int64)
    # A user the fold's train does not have (dbt drops those labels) has an empty history.
    history = train.take_or_empty(rows)
    label_items = Sequences.from_lengths(labels["id"].astype(np.int32), lengths)
    users = np.where(rows >= 0, rows, UNKNOWN).astype(np.int64)
    return EvaluationSplit(name, Queries(history, users), label_items)


def _fingerprint(
    catalogue: pa.Table, train: Sequences, times: np.ndarray, evaluation: EvaluationSplit | None
) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(catalogue.column("key").to_pylist()).encode())
    arrays = [train.items, train.offsets, times]
    if evaluation is not None:
        queries = evaluation.queries
        arrays += [queries.history.items, queries.history.offsets, queries.users]
        arrays += [evaluation.labels.items, evaluation.labels.offsets]
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]
