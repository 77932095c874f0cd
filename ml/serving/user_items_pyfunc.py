"""The user-items MLflow pyfunc, logged as a "model from code"; serves any family's bundle that
carries users (``save_bundle(..., users=, histories=)``).

Input: a DataFrame with a column ``user_id`` (string) and optionally ``history`` (a list of item
ids the user interacted with recently). A user the model knows is scored as it learned them and
never gets an item of its stored history or of ``history``; a user it does not know (or a null
``user_id``) is scored from ``history``; one with nothing known gets the most popular items.
Param ``k`` (default 10, capped at 1,000).
Output: one row per recommendation: ``row`` (input row), ``rank``, ``user_id``, ``item_id``,
``title``, ``score``; score 0 marks a slot filled from popularity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

from ml.sequences import Sequences
from ml.serving.bundle import Bundle, first_keys, first_user, load_bundle
from ml.serving.lookup import ExactLookup
from ml.serving.requests import (
    DEFAULT_K,
    BadRequest,
    log_to_stderr_unless_configured,
    log_unknown,
    logger,
    requested_k,
    shown,
    shown_list,
    string_list,
)

# Declared, not inferred: both columns Any and optional, so that each row's JSON value arrives
# as sent (a null user with a history, a history holding a number) and parse_requests names
# the row and the problem; MLflow's own enforcement would rewrite or refuse without naming.
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(AnyType(), "user_id", required=False),
            ColSpec(AnyType(), "history", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec(DataType.long, "row"),
            ColSpec(DataType.long, "rank"),
            ColSpec(DataType.string, "user_id"),
            ColSpec(DataType.string, "item_id"),
            ColSpec(DataType.string, "title"),
            ColSpec(DataType.double, "score"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", DataType.long, DEFAULT_K)]),
)


@dataclass(frozen=True)
class Lookups:
    """Item ids -> catalogue ids and user ids -> the model's user rows, indexed once per bundle."""

    items: ExactLookup
    users: ExactLookup

    @classmethod
    def of(cls, bundle: Bundle) -> Lookups:
        if bundle.users is None:
            raise ValueError("the bundle carries no users: log a user-items bundle")
        return cls(ExactLookup(bundle.catalogue.keys), ExactLookup(bundle.users))


@dataclass(frozen=True)
class UserRequests:
    user_ids: list[str | None]
    histories: list[list[str]]  # recent item ids per row, [] when none was given


def is_null(value: object) -> bool:
    """A missing cell as pandas gives it: None, NaN or pd.NA (never a list)."""
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def parse_requests(model_input: pd.DataFrame) -> UserRequests:
    if "user_id" not in model_input.columns:
        raise BadRequest(
            f"expected a column 'user_id', got {shown_list(list(model_input.columns))}"
        )
    has_history = "history" in model_input.columns
    user_ids, histories = [], []
    for row, user in enumerate(model_input["user_id"]):
        if is_null(user):
            user = None
        elif not isinstance(user, str) or not user.strip():
            raise BadRequest(f"row {row}: 'user_id' must be a non-empty string, got {shown(user)}")
        cell = model_input["history"].iloc[row] if has_history else None
        history = [] if is_null(cell) else string_list(cell, row, "history", "item")
        if user is None and not history:
            raise BadRequest(f"row {row}: no user_id and no history: nothing to recommend from")
        user_ids.append(None if user is None else user.strip())
        histories.append(history)
    return UserRequests(user_ids, histories)


def log_unknown_input(requests: UserRequests, rows: np.ndarray, recent: Sequences) -> None:
    unknown_users = [u for u, r in zip(requests.user_ids, rows, strict=True) if u and r < 0]
    if unknown_users:
        logger.info(
            "%s of %s users unknown to the model (scored from their history, else popularity): %s",
            f"{len(unknown_users):,}",
            f"{len(rows):,}",
            shown_list(unknown_users),
        )
    log_unknown("history items", requests.histories, recent)


def recommend_frame(
    bundle: Bundle, lookups: Lookups, model_input: pd.DataFrame, k: int
) -> pd.DataFrame:
    requests = parse_requests(model_input)
    rows = lookups.users.positions(requests.user_ids)
    flat = [item for items in requests.histories for item in items]
    recent = Sequences.from_lengths(
        lookups.items.positions(flat).astype(np.int32),
        np.array([len(items) for items in requests.histories], dtype=np.int64),
    )
    log_unknown_input(requests, rows, recent)
    top, _ = bundle.recommend_users(bundle.user_queries(rows, recent), k)
    row, slot = np.nonzero(top.ids >= 0)
    chosen = bundle.catalogue.table.take(pa.array(top.ids[row, slot])).to_pydict()
    return pd.DataFrame(  # in the signature's order of outputs
        {
            "row": row.astype(np.int64),
            "rank": (slot + 1).astype(np.int64),
            "user_id": [requests.user_ids[r] for r in row],
            "item_id": chosen["key"],
            "title": chosen["title"],
            "score": top.scores[row, slot].astype(np.float64),  # the fill's slots score 0
        }
    )


def example_input(bundle_dir: Path) -> pd.DataFrame:
    """The input example logged with the model: a known user alone, an unknown user with a
    history, an anonymous history. Its nulls make both columns optional in the signature."""
    user = first_user(bundle_dir)
    if user is None:
        raise ValueError(f"{bundle_dir} carries no users: it is not a user-items bundle")
    items = first_keys(bundle_dir, 3)
    return pd.DataFrame(
        {
            "user_id": [user, "a-user-the-model-never-saw", None],
            "history": [None, items[:2], items[2:]],
        }
    )


class UserItemsModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        log_to_stderr_unless_configured()
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))
        self.lookups = Lookups.of(self.bundle)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        return recommend_frame(self.bundle, self.lookups, model_input, requested_k(params))


mlflow.models.set_model(UserItemsModel())
