"""What every pyfunc shares about a request: the 400 error, the ``k`` param, how a bad value
is shown, and the server log. Whatever a request holds, a value in a message or a log line is cut
short and a list shows its first few entries: one request cannot write megabytes to the log."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from ml.sequences import Sequences

DEFAULT_K = 10
MAX_K = 1_000
# How many bad values, rows with unknown items, or items of a row one message spells out.
MAX_REPORTED = 5
# The longest a value is shown, in characters.
MAX_SHOWN = 80
# A fixed name: a model from code is imported under a generated module name.
logger = logging.getLogger("next_track.serving")


class BadRequest(MlflowException):
    """Answered as HTTP 400 with this message by `mlflow models serve`."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def shown(value: object) -> str:
    """A value as the client sent it (JSON: null, "", 5), cut to MAX_SHOWN characters."""
    if isinstance(value, str):
        value = value[: MAX_SHOWN + 1]  # never dumps a huge string only to cut it
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def shown_list(values: Sequence[object]) -> str:
    """The first MAX_REPORTED values, each ``shown``, and how many more there are."""
    more = len(values) - MAX_REPORTED
    head = ", ".join(shown(value) for value in values[:MAX_REPORTED])
    return f"[{head}{f', and {more:,} more' if more > 0 else ''}]"


def log_unknown(what: str, requested: list[list[str]], ids: Sequences) -> None:
    """One INFO line: how many of the ``requested`` items (``what``: tracks, history items) the
    model does not know (id -1 in ``ids``, row for row) and in how many rows, with the first
    rows' first ones."""
    unknown = {
        row: missing
        for row, items in enumerate(requested)
        if (missing := [item for item, i in zip(items, ids[row], strict=True) if i < 0])
    }
    if not unknown:
        return
    listed = [f"row {row}: {shown_list(items)}" for row, items in unknown.items()]
    more = len(listed) - MAX_REPORTED
    logger.info(
        "%s of %s %s unknown to the model, ignored (%s of %s rows): %s%s",
        f"{sum(len(items) for items in unknown.values()):,}",
        f"{len(ids.items):,}",
        what,
        f"{len(unknown):,}",
        f"{len(requested):,}",
        "; ".join(listed[:MAX_REPORTED]),
        f"; and {more:,} more rows" if more > 0 else "",
    )


def requested_k(params: dict | None) -> int:
    """k from the request; MLflow has already refused a k that is not an integer (the
    signatures declare it long), this refuses k < 1 and caps k at MAX_K."""
    raw = (params or {}).get("k", DEFAULT_K)
    if isinstance(raw, bool) or not isinstance(raw, int | np.integer):
        raise BadRequest(f"k must be a whole number, got {shown(raw)}")
    k = int(raw)
    if k < 1:
        raise BadRequest(f"k must be at least 1, got {k}")
    if k > MAX_K:
        logger.warning("k=%d capped at %d (MAX_K)", k, MAX_K)
    return min(k, MAX_K)


def string_list(value: object, row: int, column: str, what: str) -> list[str]:
    """A cell that must hold a list of non-empty strings (JSON arrays arrive as numpy arrays),
    stripped; the error names the row, the column and the entry."""
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, str) or not isinstance(items, list | tuple):
        raise BadRequest(f"row {row}: '{column}' must be a list of strings, got {shown(items)}")
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise BadRequest(
                f"row {row}: {what} {position} must be a non-empty string, got {shown(item)}"
            )
    return [item.strip() for item in items]


def log_to_stderr_unless_configured() -> None:
    """`mlflow models serve` configures no logging for model code, which would drop the INFO
    lines on unknown items; a host that configured logging keeps its own."""
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
