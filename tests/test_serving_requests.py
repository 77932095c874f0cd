"""The next-track pyfunc in process on the tiny bundle: what one request can make it write to
the server's log."""

from types import SimpleNamespace

import pandas as pd
import pytest

from ml.serving import next_track_pyfunc
from ml.serving.requests import logger
from tests.conftest import TINY_TRACKS

KEYS = [f"{artist}|||{title}" for artist, title in TINY_TRACKS]
# The longest a log line may be, whatever the request holds.
MAX_LOG_LINE = 4_000


@pytest.fixture(scope="module")
def model(tiny_bundle) -> next_track_pyfunc.NextTrackModel:
    loaded = next_track_pyfunc.NextTrackModel()
    loaded.load_context(SimpleNamespace(artifacts={"bundle": str(tiny_bundle)}))
    return loaded


def test_a_huge_request_writes_a_short_log_line(model, caplog):
    caplog.set_level("INFO", logger=logger.name)
    unknown = [f"Nobody - Song {i}" for i in range(200_000)]
    rows = [[KEYS[0], "x" * 1_000_000, *unknown]] + [[f"Nobody - {i}"] for i in range(50)]
    answer = model.predict(None, pd.DataFrame({"tracks": rows}), {"k": 2})
    assert answer.groupby("row").size().min() == 2
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    longest = max(len(line) for line in lines)
    assert longest <= MAX_LOG_LINE
    assert "200,051 of 200,052 tracks unknown to the model" in lines[0]
    assert "(51 of 51 rows)" in lines[0] and "199,996 more" in lines[0]
