"""User-items serving on a tiny synthetic set: the bundle with its users, the pyfunc logged and
registered in a temporary MLflow store and loaded by alias (where torch and gensim cannot be
imported), its answers for known, unknown and anonymous users, bad input, and the batch table."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from mlflow import MlflowClient

from ml.catalogue import Catalogue
from ml.recommenders.base import Recommender
from ml.recommenders.ease import Ease, EaseParams
from ml.recommenders.two_tower import TwoTower, TwoTowerParams
from ml.registry import LoggedModel, ModelCard, ensure_experiment, log_and_register
from ml.sequences import Sequences
from ml.serving import user_items_pyfunc
from ml.serving.batch import USER_ITEMS_SCHEMA, user_items_batches, write_table
from ml.serving.bundle import Bundle, load_bundle, save_bundle
from ml.serving.requests import BadRequest, logger

GROUPS, ITEMS_PER_GROUP, USERS_PER_GROUP = 3, 6, 8
N_ITEMS = GROUPS * ITEMS_PER_GROUP
ITEM_IDS = [f"item-{i:02d}" for i in range(N_ITEMS)]
USER_IDS = [f"user-{u:02d}" for u in range(GROUPS * USERS_PER_GROUP)]
FAST = {"embedding_dim": 8, "negatives": 5, "epochs": 40, "learning_rate": 0.05, "batch_size": 16}


def group_of(item: int) -> int:
    return item // ITEMS_PER_GROUP


def synthetic() -> tuple[Sequences, Sequences]:
    """Each user likes its group's items: train holds 3 of them; the full history (every period,
    what serving excludes) one more. Group 0 is the most popular (one extra user each)."""
    train, full = [], []
    for user in range(len(USER_IDS)):
        group = user % GROUPS
        liked = [group * ITEMS_PER_GROUP + (user + j) % ITEMS_PER_GROUP for j in range(4)]
        train.append(liked[:3] + ([0] if group != 0 and user % 4 == 1 else []))
        full.append([*train[-1], liked[3]])
    return Sequences.from_lists(train), Sequences.from_lists(full)


def fitted(family: str) -> Recommender:
    train, _ = synthetic()
    if family == "ease":
        model = Ease(EaseParams(l2=1.0), n_items=N_ITEMS)
    else:
        model = TwoTower(TwoTowerParams(**FAST, item_bias=True, patience=0), n_items=N_ITEMS)
    model.fit(train)
    return model


def catalogue(train: Sequences) -> Catalogue:
    return Catalogue(
        pa.table(
            {
                "key": ITEM_IDS,
                "title": [f"Title {i} (group {group_of(i)})" for i in range(N_ITEMS)],
                "train_count": np.bincount(train.items, minlength=N_ITEMS),
            }
        )
    )


@pytest.fixture(scope="module", params=["ease", "two_tower"])
def bundle_dir(request, tmp_path_factory) -> Path:
    train, full = synthetic()
    folder = tmp_path_factory.mktemp(request.param) / "bundle"
    save_bundle(folder, fitted(request.param), catalogue(train), {}, USER_IDS, full)
    return folder


@pytest.fixture(scope="module")
def bundle(bundle_dir) -> Bundle:
    return load_bundle(bundle_dir)


def recommend(bundle: Bundle, rows: dict, k: int = 4) -> pd.DataFrame:
    lookups = user_items_pyfunc.Lookups.of(bundle)
    return user_items_pyfunc.recommend_frame(bundle, lookups, pd.DataFrame(rows), k)


def test_a_known_user_never_gets_an_item_it_has_in_any_period_or_its_recent_history(bundle):
    _, full = synthetic()
    answer = recommend(bundle, {"user_id": ["user-04"], "history": [["item-11"]]}, k=N_ITEMS)
    has = {ITEM_IDS[i] for i in full[4]} | {"item-11"}
    assert len(answer) == N_ITEMS - len(has)
    assert not has & set(answer["item_id"])
    assert answer["rank"].tolist() == list(range(1, len(answer) + 1))
    assert (answer["user_id"] == "user-04").all() and (answer["row"] == 0).all()
    # the first recommendation is the one item of its group it does not have yet
    group = {i for i in range(N_ITEMS) if group_of(i) == 4 % GROUPS}
    missing = group - set(full[4].tolist())
    assert answer["item_id"].iloc[0] in {ITEM_IDS[i] for i in missing}


def test_an_unknown_user_is_scored_from_its_history_and_logged(bundle, caplog):
    caplog.set_level("INFO", logger=logger.name)
    history = [ITEM_IDS[12], ITEM_IDS[13], ITEM_IDS[14], "no-such-item"]
    rows = {"user_id": ["someone-new", None], "history": [history, history[:3]]}
    answer = recommend(bundle, rows, k=3)
    for row in (0, 1):
        mine = answer[answer["row"] == row]
        assert set(mine["item_id"]) == {ITEM_IDS[15], ITEM_IDS[16], ITEM_IDS[17]}
        assert (mine["score"] != 0).all()  # the model's scores, not the popularity fill
    assert answer[answer["row"] == 1]["user_id"].isna().all()
    assert "1 of 2 users unknown to the model" in caplog.text and "someone-new" in caplog.text
    assert "1 of 7 history items unknown to the model, ignored (1 of 2 rows)" in caplog.text
    assert 'row 0: ["no-such-item"]' in caplog.text


def test_a_huge_request_writes_a_few_short_log_lines(bundle, caplog):
    caplog.set_level("INFO", logger=logger.name)
    strangers = ["u" * 1_000_000, *(f"stranger-{i}" for i in range(999))]
    histories = [[ITEM_IDS[0], *(f"unknown-{i}" for i in range(100_000))]] + [["x"]] * 999
    answer = recommend(bundle, {"user_id": strangers, "history": histories}, k=2)
    assert len(answer) == 2 * len(strangers)
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    longest = max(len(line) for line in lines)
    assert len(lines) == 2 and longest <= 4_000
    assert "1,000 of 1,000 users unknown" in lines[0] and "995 more" in lines[0]
    assert "100,999 of 101,000 history items unknown" in lines[1] and "99,995 more" in lines[1]


def test_a_user_with_nothing_known_gets_the_most_popular_items_with_score_zero(bundle):
    answer = recommend(bundle, {"user_id": ["someone-new"]}, k=3)
    counts = bundle.catalogue.train_counts
    expected = [ITEM_IDS[i] for i in np.lexsort((np.arange(N_ITEMS), -counts))[:3]]
    assert answer["item_id"].tolist() == expected and (answer["score"] == 0).all()
    assert answer["title"].tolist() == [f"Title {int(i[-2:])} (group 0)" for i in expected]


@pytest.mark.parametrize(
    ("rows", "params", "message"),
    [
        ({"user_id": ["user-01", None]}, {}, "row 1: no user_id and no history"),
        ({"user_id": [None], "history": [[]]}, {}, "row 0: no user_id and no history"),
        ({"user_id": ["user-01", "x"], "history": [None, "item-01"]}, {}, "row 1: 'history' must"),
        ({"user_id": ["x"], "history": [["item-01", 7]]}, {}, "row 0: item 1 must be a non-empty"),
        ({"user_id": ["user-01", 5]}, {}, "row 1: 'user_id' must be a non-empty string"),
        ({"user": ["user-01"]}, {}, "expected a column 'user_id'"),
        ({"user_id": ["user-01"]}, {"k": 0}, "k must be at least 1"),
    ],
)
def test_bad_input_names_the_row_and_the_problem(bundle_dir, rows, params, message):
    model = user_items_pyfunc.UserItemsModel()
    model.load_context(SimpleNamespace(artifacts={"bundle": str(bundle_dir)}))
    with pytest.raises(BadRequest, match=message):
        model.predict(None, pd.DataFrame(rows), params)


# Runs where torch and gensim cannot be imported: loads the registered model by alias, answers.
LOAD_WITHOUT_TRAINING_LIBRARIES = """
import importlib.abc, json, sys
# As if neither were installed: importing them fails and sys.modules never holds them (a None
# entry there would break libraries that probe sys.modules, such as scipy's array-API helpers).
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "gensim"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
import mlflow
import pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
answer = model.predict(pd.DataFrame(json.loads(sys.argv[3])), params={"k": 4})
print(answer.to_json(orient="records"))
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A temporary sqlite MLflow store (made once: its migrations take seconds) and its
    user-items experiment, as the pipeline's."""
    folder = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{folder}/mlflow.db"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield tracking_uri, ensure_experiment(tracking_uri, "user-items", folder.as_uri())
    finally:
        mlflow.set_tracking_uri(previous)


def test_the_registered_pyfunc_answers_as_in_process_without_torch(bundle_dir, registry):
    tracking_uri, experiment = registry
    mlflow.set_tracking_uri(tracking_uri)  # conftest puts every test back on the session's
    name = f"user-items-{bundle_dir.parent.name}"
    bundle = load_bundle(bundle_dir)
    example = user_items_pyfunc.example_input(bundle_dir)
    client = MlflowClient(tracking_uri)
    parent = client.create_run(experiment).info.run_id
    model = LoggedModel(
        card=ModelCard(name, "user_items", "Test model.", "nothing", "test_ndcg_at_10"),
        pyfunc_file=Path(user_items_pyfunc.__file__),
        bundle_dir=bundle_dir,
        signature=user_items_pyfunc.SIGNATURE,
        example_input=example,
    )
    _, version = log_and_register(client, experiment, parent, model)
    client.set_registered_model_alias(name, "champion", version)
    requirements = (
        Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{name}/{version}", tracking_uri=tracking_uri
            )
        )
        / "requirements.txt"
    ).read_text()
    assert "torch" not in requirements and "gensim" not in requirements
    rows = {
        "user_id": ["user-04", "someone-new", None, "user-05"],
        "history": [["item-11"], [ITEM_IDS[12], ITEM_IDS[13]], [ITEM_IDS[1]], None],
    }
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_TRAINING_LIBRARIES, tracking_uri,
         f"models:/{name}@champion", json.dumps(rows)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    served = pd.DataFrame(json.loads(loaded.stdout.strip().splitlines()[-1]))
    expected = recommend(bundle, rows, 4)
    assert served.columns.tolist() == ["row", "rank", "user_id", "item_id", "title", "score"]
    ranked = ["row", "rank", "item_id", "title"]
    pd.testing.assert_frame_equal(served[ranked], expected[ranked])
    assert np.allclose(served["score"], expected["score"], atol=1e-6)
    assert served["user_id"].tolist() == expected["user_id"].tolist()


def test_user_items_batches_give_k_unseen_catalogue_items_to_every_user(bundle, tmp_path):
    """Users the model knows, one it does not know with a history, one with nothing known: each
    gets k rows, and based_on says what they came from."""
    _, full = synthetic()
    users = [*USER_IDS, "newcomer", "stranger"]
    histories = Sequences.from_lists([*full.to_lists(), [12, 13], []])
    path = tmp_path / "user_recommendations.duckdb"
    lines = []
    batches = user_items_batches(bundle, users, histories, k=5, batch=7, log=lines.append)
    built_from = {"model_name": "user-items", "model_version": "7"}
    rows = write_table(
        path, "user_recommendations", batches, USER_ITEMS_SCHEMA, "user_id", built_from
    )
    assert rows == 5 * len(users) and len(lines) == 4  # 26 users in batches of 7
    with duckdb.connect(str(path), read_only=True) as connection:
        table = connection.sql("select * from user_recommendations").df()
    assert table.groupby("user_id")["rank"].apply(lambda r: sorted(r) == [1, 2, 3, 4, 5]).all()
    assert set(table["user_id"]) == set(users) and set(table["item_id"]) <= set(ITEM_IDS)
    assert (table["model_name"] == "user-items").all() and (table["model_version"] == "7").all()
    seen = {(users[u], ITEM_IDS[i]) for u in range(len(histories)) for i in histories[u]}
    assert not seen & set(zip(table["user_id"], table["item_id"], strict=True))
    based_on = table.groupby("user_id")["based_on"].unique().map(list).to_dict()
    assert all(based_on[user] == ["user"] for user in USER_IDS)
    assert based_on["newcomer"] == ["history"] and based_on["stranger"] == ["popularity"]
    stranger = table[table["user_id"] == "stranger"].sort_values("rank")
    counts = bundle.catalogue.train_counts
    most_popular = [ITEM_IDS[i] for i in np.lexsort((np.arange(N_ITEMS), -counts))[:5]]
    assert stranger["item_id"].tolist() == most_popular and (stranger["score"] == 0).all()
    newcomer = table[table["user_id"] == "newcomer"].sort_values("rank")
    assert newcomer["item_id"].iloc[0] in ITEM_IDS[14:18]  # its history's group, unseen
    with pytest.raises(ValueError, match="3 histories for 26 users"):
        next(user_items_batches(bundle, users, full.slice(0, 3), k=5))


def test_a_request_builds_no_hash_table_of_every_item_or_user(bundle, monkeypatch):
    lookups = user_items_pyfunc.Lookups.of(bundle)  # built once, when the model loads

    def everything(*args, **kwargs):
        raise AssertionError("pyarrow.compute.index_in hashes every value at each call")

    monkeypatch.setattr(pa.compute, "index_in", everything)
    rows = pd.DataFrame({"user_id": ["user-04", "someone-new"], "history": [None, ["item-12"]]})
    answer = user_items_pyfunc.recommend_frame(bundle, lookups, rows, 3)
    assert answer.groupby("row").size().tolist() == [3, 3]
