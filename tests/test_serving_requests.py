"""The next-track pyfunc in process on the tiny bundle: tracks found whatever their case and
spacing, lookups that do not hash the whole catalogue at each request, and what one request can
make it write to the server's log."""

from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ml.catalogue import CATALOGUE_FILE, Catalogue
from ml.serving import next_track_pyfunc
from ml.serving.lookup import TrackLookup
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


@pytest.mark.parametrize(
    "typed",
    [
        "artist a|||song 0",
        " ARTIST  A ||| Song 0 ",
        "artist a - song 0",
        "  ARTIST A  -  song\t0",
    ],
)
def test_a_track_is_found_whatever_its_case_and_spacing(model, typed):
    expected = model.predict(None, pd.DataFrame({"tracks": [[KEYS[0]]]}), {"k": 3})
    answer = model.predict(None, pd.DataFrame({"tracks": [[typed]]}), {"k": 3})
    pd.testing.assert_frame_equal(answer, expected)
    assert (answer["score"] > 0).all()  # the model's own answer, not the popularity fill


def test_a_request_builds_no_hash_table_of_the_whole_catalogue(model, monkeypatch):
    def whole_catalogue(*args, **kwargs):
        raise AssertionError("pyarrow.compute.index_in hashes every key at each call")

    monkeypatch.setattr(pc, "index_in", whole_catalogue)
    answer = model.predict(None, pd.DataFrame({"tracks": [[KEYS[0], "artist b - song 3"]]}), {})
    assert len(answer) == 6  # every other track of the catalogue


def test_a_catalogue_read_from_many_row_groups_is_one_chunk(tmp_path):
    """A request takes its tracks' names from the catalogue: one chunk per column, so that costs
    the same whatever the catalogue's size (take on a chunked column visits every chunk)."""
    keys = [f"artist {i}|||song {i}" for i in range(10)]
    table = pa.table({"key": keys, "artist": keys, "title": keys, "train_count": list(range(10))})
    pq.write_table(table, tmp_path / CATALOGUE_FILE, row_group_size=3)
    assert pq.read_table(tmp_path / CATALOGUE_FILE).column("key").num_chunks > 1
    loaded = Catalogue.load(tmp_path)
    assert all(column.num_chunks == 1 for column in loaded.table.columns)
    assert loaded.table.take(pa.array([7, 2])).column("key").to_pylist() == [keys[7], keys[2]]


def test_names_differing_only_in_case_find_the_exact_key_else_the_most_played():
    catalogue = Catalogue(
        pa.table(
            {
                "key": ["Muse|||Uprising", "MUSE|||Uprising", "Muse|||Starlight"],
                "artist": ["Muse", "MUSE", "Muse"],
                "title": ["Uprising", "Uprising", "Starlight"],
                "train_count": [1, 5, 2],
            }
        )
    )
    typed = ["Muse|||Uprising", "MUSE|||Uprising", "muse|||uprising", "muse - UPRISING"]
    assert TrackLookup(catalogue).ids_of([*typed, "muse|||starlight", "Nobody - X"]).tolist() == [
        0, 1, 1, 1, 2, -1
    ]  # fmt: skip
