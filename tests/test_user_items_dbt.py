"""The user-items dbt models on MovieLens-100k with the published protocol, checked against the
file itself, and on hand-made rows for the date split and every drop reason."""

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.datasets.user_items import UserItemsFold, read_user_histories, read_user_items_data
from ml.sources import ingest
from ml.sources.interactions import INTERACTIONS_SCHEMA, ITEMS_SCHEMA, ingest_interactions
from ml.sources.synthetic import SyntheticSpec
from tests.test_dbt import dbt_build, query

USER_ITEMS = ("--selector", "user_items")


@pytest.fixture(scope="module")
def movielens_warehouse(shared_data, tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("movielens")
    ingest_interactions(shared_data / "movielens_100k", data_dir / "raw")
    result = dbt_build(data_dir, *USER_ITEMS)
    assert result.returncode == 0, result.stdout[-3000:]
    return data_dir


@pytest.fixture(scope="module")
def ratings(shared_data) -> list[tuple[str, str, float, int]]:
    lines = (shared_data / "movielens_100k" / "ml-100k.inter").read_text().splitlines()[1:]
    return [(u, i, float(r), int(t)) for u, i, r, t in (line.split("\t") for line in lines)]


def published_split(ratings):
    """The protocol computed from the file: every user has >= 20 ratings; validation is the
    20% of the time range before the last 20%, which is test."""
    assert min(Counter(u for u, *_ in ratings).values()) >= 20
    first, last = min(t for *_, t in ratings), max(t for *_, t in ratings)
    validation_start, test_start = first + 0.6 * (last - first), first + 0.8 * (last - first)
    train = [r for r in ratings if r[3] < validation_start]
    validation = [r for r in ratings if validation_start <= r[3] < test_start]
    test = [r for r in ratings if r[3] >= test_start]
    return train, validation, test, test_start


def test_no_test_interaction_before_the_threshold(movielens_warehouse, ratings):
    train, validation, test, test_start = published_split(ratings)
    counts = dict(
        query(movielens_warehouse, "select split, count(*) from interaction_splits group by 1")
    )
    assert counts == {"train": len(train), "validation": len(validation), "test": len(test)}
    earliest_test, latest_before = query(
        movielens_warehouse,
        "select min(timestamp) filter (where split = 'test'),"
        " max(timestamp) filter (where split != 'test') from interaction_splits",
    )[0]
    # stored as UTC wall-clock time
    earliest_test, latest_before = (t.replace(tzinfo=UTC) for t in (earliest_test, latest_before))
    assert earliest_test.timestamp() >= test_start > latest_before.timestamp()


def test_test_labels_drop_cold_users_items_and_low_ratings(movielens_warehouse, ratings):
    train, validation, test, _ = published_split(ratings)
    before = train + validation  # the test model is refit on both
    users, items = {r[0] for r in before}, {r[1] for r in before}
    expected = Counter()
    labels = set()
    for user, item, rating, _ in test:
        reason = (
            "cold_user"
            if user not in users
            else "cold_item"
            if item not in items
            else "not_relevant"
            if rating < 4
            else None
        )
        expected[reason] += 1
        if reason is None:
            labels.add((user, item))
    got = dict(
        query(
            movielens_warehouse,
            "select coalesce(label_drop_reason, 'label'), count(*) from interaction_splits"
            " where split = 'test' group by 1",
        )
    )
    assert got == {k or "label": v for k, v in expected.items()}
    assert expected["cold_item"] > 0 and expected["cold_user"] > 0
    rows = query(
        movielens_warehouse,
        "select user_id, item_id, rating from interaction_splits where split = 'test' and is_label",
    )
    assert {(u, i) for u, i, _ in rows} == labels and min(r for *_, r in rows) >= 4


def test_interaction_stats_agree_with_the_tables(movielens_warehouse):
    cursor_rows = query(movielens_warehouse, "select * from interaction_stats")
    assert len(cursor_rows) == 1
    stats = dict(
        zip(
            [r[0] for r in query(movielens_warehouse, "describe interaction_stats")],
            cursor_rows[0],
            strict=True,
        )
    )
    assert stats["rows_in"] == stats["rows_clean"] == stats["rows"] == 100_000
    assert (stats["users"], stats["items"]) == (943, 1_682)
    for period in ("validation", "test"):
        labels, users = query(
            movielens_warehouse,
            "select count(*), count(distinct user_id) from interaction_splits"
            f" where split = '{period}' and is_label",
        )[0]
        assert (stats[f"{period}_labels"], stats[f"{period}_users"]) == (labels, users) != (0, 0)
    train_items = query(
        movielens_warehouse, "select count(*) from dim_items where train_interactions > 0"
    )[0][0]
    assert stats["train_items"] == train_items
    assert stats["split_method"] == "time_range" and stats["min_user_interactions"] == 20


def test_quantile_split_on_a_reproducible_user_sample(shared_data, tmp_path):
    ingest_interactions(shared_data / "movielens_100k", tmp_path / "raw")
    dbt_vars = {"interactions_split": "quantile", "interactions_sample_percent": 50}
    result = dbt_build(tmp_path, *USER_ITEMS, "--vars", json.dumps(dbt_vars))
    assert result.returncode == 0, result.stdout[-3000:]
    rows, outside, users, test_rows = query(
        tmp_path,
        "select rows, rows_outside_sample, users, test_rows from interaction_stats",
    )[0]
    assert rows + outside == 100_000 and 0.35 < users / 943 < 0.65
    # whole users: every sampled user keeps all of its ratings
    partial = query(
        tmp_path,
        "select count(*)"
        " from (select user_id, count(*) as kept from interaction_splits group by 1) as k"
        " join (select user_id, count(*) as total from raw.interactions group by 1) as r"
        " using (user_id) where k.kept != r.total",
    )
    assert partial == [(0,)]
    assert abs(test_rows / rows - 0.2) < 0.01  # the last 20% of interactions, not of time


def interactions_file(folder: Path, rows: list[tuple]) -> None:
    """rows: (user, item, day of September 2020, rating)."""
    (folder / "raw").mkdir(parents=True)
    columns = list(zip(*rows, strict=True))
    pq.write_table(
        pa.table(
            {
                "row_id": list(range(len(rows))),
                "user_id": columns[0],
                "item_id": columns[1],
                "timestamp": [datetime(2020, 9, day) if day else None for day in columns[2]],
                "rating": columns[3],
            },
            schema=INTERACTIONS_SCHEMA,
        ),
        folder / "raw" / "interactions.parquet",
    )
    items = sorted({item.strip() for item in columns[1] if item and item.strip()})
    pq.write_table(
        pa.table(
            {f.name: pa.nulls(len(items), f.type) for f in ITEMS_SCHEMA} | {"item_id": items},
            schema=ITEMS_SCHEMA,
        ),
        folder / "raw" / "items.parquet",
    )


def test_date_split_drop_reasons_on_hand_made_rows(tmp_path):
    rows = [
        # train: before the 10th
        ("a", "x", 1, 5.0),
        ("a", "y", 2, 5.0),
        (" a ", "x", 3, 1.0),  # a repeat of (a, x) once trimmed: dropped, first rating kept
        ("b", "x", 2, 3.0),
        ("b", "", 2, 3.0),  # blank item
        (None, "x", 2, 3.0),  # no user
        ("b", "y", None, 3.0),  # no timestamp
        ("lone", "x", 2, 5.0),  # one interaction: below min_user_interactions=2
        # validation: 10th to 19th
        ("a", "z", 11, 5.0),  # z is new: cold item for validation
        ("b", "y", 12, 5.0),  # a label
        ("b", "w", 12, 2.0),  # w new too: cold item (checked before relevance)
        ("c", "x", 13, 5.0),  # c is new: cold user
        ("c", "y", 14, 5.0),
        # test: from the 20th; the refit knows a, b, c and x, y, z, w
        ("a", "w", 21, 4.0),  # a label
        ("c", "z", 22, 3.5),  # not relevant
        ("d", "x", 23, 5.0),  # cold user
        ("d", "q", 24, 5.0),
    ]
    interactions_file(tmp_path, rows)
    dbt_vars = {
        "min_user_interactions": 2,
        "interactions_split": "dates",
        "training_end_date": "2020-09-10",
        "validation_end_date": "2020-09-20",
    }
    result = dbt_build(tmp_path, *USER_ITEMS, "--vars", json.dumps(dbt_vars))
    assert result.returncode == 0, result.stdout[-3000:]
    got = query(
        tmp_path,
        "select user_id, item_id, split, label_drop_reason, rating from interaction_splits"
        " order by row_id",
    )
    assert got == [
        ("a", "x", "train", None, 5.0),
        ("a", "y", "train", None, 5.0),
        ("b", "x", "train", None, 3.0),
        ("a", "z", "validation", "cold_item", 5.0),
        ("b", "y", "validation", None, 5.0),
        ("b", "w", "validation", "cold_item", 2.0),
        ("c", "x", "validation", "cold_user", 5.0),
        ("c", "y", "validation", "cold_user", 5.0),
        ("a", "w", "test", None, 4.0),
        ("c", "z", "test", "not_relevant", 3.5),
        ("d", "x", "test", "cold_user", 5.0),
        ("d", "q", "test", "cold_user", 5.0),
    ]
    stats = query(
        tmp_path,
        "select rows_in, rows_blank_user, rows_blank_item, rows_null_timestamp, rows_repeated,"
        " users_below_min, rows_of_users_below_min, validation_labels, test_labels"
        " from interaction_stats",
    )
    assert stats == [(17, 1, 1, 1, 1, 1, 1, 1, 1)]


def test_plain_dbt_build_needs_no_interaction_data(tmp_path):
    ingest(None, tmp_path / "raw" / "playlist_events.parquet", synthetic=SyntheticSpec(300))
    result = dbt_build(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "interaction" not in result.stdout
    missing = dbt_build(tmp_path, *USER_ITEMS)
    assert missing.returncode != 0
    assert f"Raw interactions not found at '{tmp_path}/raw/interactions.parquet'" in missing.stdout


def test_folds_encode_the_split_for_the_models(movielens_warehouse, tmp_path):
    data = read_user_items_data(movielens_warehouse / "warehouse.duckdb")
    stats = dict(
        zip(
            [r[0] for r in query(movielens_warehouse, "describe interaction_stats")],
            query(movielens_warehouse, "select * from interaction_stats")[0],
            strict=True,
        )
    )
    fold = data.validation
    assert (len(fold.train.items), fold.n_items, len(fold.users)) == (
        stats["train_rows"],
        stats["train_items"],
        stats["train_users"],
    )
    assert len(fold.evaluation) == stats["validation_users"]
    assert len(fold.evaluation.labels.items) == stats["validation_labels"]
    test = data.test
    assert len(test.train.items) == stats["train_rows"] + stats["validation_rows"]
    assert len(test.evaluation.labels.items) == stats["test_labels"]
    for f in (fold, test):
        assert (f.evaluation.labels.items >= 0).all() and (f.evaluation.queries.users >= 0).all()
    # a test query: the user's train + validation items in time order, labels its test items
    user = test.query_user_ids()[0]
    keys = test.catalogue.key_list()
    history = test.evaluation.queries.history[0]
    assert [keys[i] for i in history] == [
        item
        for (item,) in query(
            movielens_warehouse,
            f"select item_id from interaction_splits where user_id = '{user}'"
            " and split != 'test' order by timestamp, row_id",
        )
    ]
    assert np.array_equal(test.train[test.evaluation.queries.users[0]], history)
    assert test.train_times.shape == test.train.items.shape
    features, names = test.item_features()
    toy_story = test.catalogue.key_list().index("1")
    assert [names[j] for j in features[toy_story].indices] == [
        "decade:1990s",
        "genre:Animation",
        "genre:Children's",
        "genre:Comedy",
    ]
    test.save(tmp_path / "fold")
    loaded = UserItemsFold.load(tmp_path / "fold")
    assert loaded.fingerprint == test.fingerprint and loaded.users == test.users
    assert np.array_equal(loaded.evaluation.labels.items, test.evaluation.labels.items)


def test_user_histories_hold_every_period_in_the_fold_catalogue(movielens_warehouse):
    fold = read_user_items_data(movielens_warehouse / "warehouse.duckdb").validation
    histories = read_user_histories(
        movielens_warehouse / "warehouse.duckdb", fold.users, fold.catalogue
    )
    assert len(histories) == len(fold.users)
    keys = fold.catalogue.key_list()
    for row in (0, len(fold.users) // 2, len(fold.users) - 1):
        every_period = query(
            movielens_warehouse,
            f"select item_id, split from interaction_splits where user_id = '{fold.users[row]}'"
            " order by timestamp, row_id",
        )
        known = [item for item, _ in every_period if item in set(keys)]
        assert [keys[i] for i in histories[row]] == known
        assert histories[row][: len(fold.train[row])].tolist() == fold.train[row].tolist()
    # later periods are there too, which the fold's train lacks
    assert len(histories.items) > len(fold.train.items)


def test_playlist_rows_without_real_timestamps_hold_out_within_each_user(tmp_path):
    """The playlist rows as interactions (time = row order from 1970): a global time split put
    whole playlists after each boundary (one validation user); each user's last rows are held
    out instead, chosen automatically and said so in interaction_stats."""
    playlists = tmp_path / "playlist_events.parquet"
    ingest(None, playlists, synthetic=SyntheticSpec(playlists=300, seed=4))
    ingest_interactions(playlists, tmp_path / "raw")
    result = dbt_build(tmp_path, *USER_ITEMS, "--vars", json.dumps({"min_user_interactions": 5}))
    assert result.returncode == 0, result.stdout[-3000:]
    method, reason, users, validation_users, test_users = query(
        tmp_path,
        "select split_method, split_reason, users, validation_users, test_users"
        " from interaction_stats",
    )[0]
    assert method == "per_user" and "row order" in reason, reason
    assert validation_users > 0.5 * users and test_users > 0.5 * users, (users, validation_users)
    # per user: train rows first, then validation, then test, in row order
    out_of_order = query(
        tmp_path,
        "select count(*) from (select split, lag(split) over (partition by user_id order by"
        " row_id) as before from interaction_splits)"
        " where (split = 'train' and before != 'train')"
        " or (split = 'validation' and before = 'test')",
    )
    assert out_of_order == [(0,)]
    test_share = query(
        tmp_path,
        "select avg(share) from (select user_id, avg((split = 'test')::int) as share"
        " from interaction_splits group by 1)",
    )[0][0]
    assert 0.15 < test_share < 0.3
