"""Progress reporting: the library reports through a plain callable, so a Dagster log, ``print``
or nothing at all can listen."""

from collections.abc import Callable

Log = Callable[[str], None]


def no_log(_: str) -> None:
    """The listener when nobody listens."""
