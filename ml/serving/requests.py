"""What every pyfunc shares about a request: the 400 error and the ``k`` param."""

from __future__ import annotations

import logging

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

MAX_K = 1_000
logger = logging.getLogger(__name__)


class BadRequest(MlflowException):
    """Answered as HTTP 400 with this message by `mlflow models serve`."""

    def __init__(self, message: str):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def requested_k(params: dict | None) -> int:
    """``k`` from the request's params (default 10), at least 1, capped at ``MAX_K``."""
    raw = (params or {}).get("k", 10)
    try:
        k = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"k must be an integer, got {raw!r}") from None
    if k < 1:
        raise BadRequest(f"k must be at least 1, got {k}")
    if k > MAX_K:
        logger.warning("k=%d capped at %d", k, MAX_K)
    return min(k, MAX_K)


def string_list(value: object, row: int, column: str, what: str) -> list[str]:
    """A cell that must hold a list of non-empty strings (JSON arrays arrive as numpy arrays),
    stripped; the error names the row, the column and the entry."""
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, str) or not isinstance(items, list | tuple):
        raise BadRequest(f"row {row}: '{column}' must be a list of strings, got {items!r}")
    for position, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise BadRequest(
                f"row {row}: {what} {position} must be a non-empty string, got {item!r}"
            )
    return [item.strip() for item in items]
