"""Interactions loaders on the real MovieLens-100k files (counted against the files themselves)
and on small hand-made inputs in every supported layout, good and bad."""

import csv
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.sources import SourceError
from ml.sources.canonical import CANONICAL_SCHEMA
from ml.sources.interactions import ColumnMapping, ItemColumns, ingest_interactions


def read(folder: Path, name: str = "interactions") -> dict[str, list]:
    return pq.read_table(folder / f"{name}.parquet").to_pydict()


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def movielens_rows(shared_data: Path) -> list[list[str]]:
    lines = (shared_data / "movielens_100k" / "ml-100k.inter").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


def test_recbole_movielens_every_rating_in_file_order(shared_data, tmp_path):
    rows = movielens_rows(shared_data)
    report = ingest_interactions(shared_data / "movielens_100k", tmp_path)
    table = read(tmp_path)
    assert report.format == "recbole"
    assert (report.rows_written, report.users, report.items) == (100_000, 943, 1_682)
    assert len(rows) == 100_000 and len({r[0] for r in rows}) == 943
    assert len({r[1] for r in rows}) == 1_682
    assert table["row_id"] == list(range(100_000))
    got = zip(table["user_id"], table["item_id"], table["rating"], table["timestamp"], strict=True)
    assert list(got) == [(u, i, float(r), utc(int(t))) for u, i, r, t in rows]
    assert report.dropped == {} and report.missing == {"user_id": 0, "item_id": 0, "timestamp": 0}


def test_recbole_items_titles_years_and_genres(shared_data, tmp_path):
    ingest_interactions(shared_data / "movielens_100k" / "ml-100k.inter", tmp_path)
    items = read(tmp_path, "items")
    by_id = {i: (t, y, g) for i, t, y, g in zip(*items.values(), strict=True)}
    assert len(by_id) == 1_682
    assert by_id["1"] == ("Toy Story", 1995, ["Animation", "Children's", "Comedy"])
    assert by_id["267"][1] is None  # the file's year is 'unkonwn'


def test_grouplens_layout_from_the_real_ratings(shared_data, tmp_path):
    """u.data is the same ratings as ml-100k.inter without the header: the same 100,000 rows."""
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    rows = movielens_rows(shared_data)
    (folder / "u.data").write_text("".join("\t".join(r) + "\n" for r in rows))
    report = ingest_interactions(folder, tmp_path / "out")
    assert report.format == "grouplens"
    assert (report.rows_written, report.users, report.items) == (100_000, 943, 1_682)
    table = read(tmp_path / "out")
    assert table["timestamp"][0] == utc(int(rows[0][3])) and table["rating"][0] == float(rows[0][2])


def test_grouplens_items_are_latin1_with_genre_flags(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t5\t881250949\n2\t20\t3\t881250950\n")
    genres = ["unknown", "Action", "Comedy"]
    (folder / "u.genre").write_text("".join(f"{g}|{n}\n" for n, g in enumerate(genres)) + "\n")
    (folder / "u.item").write_bytes(
        "10|Amélie (2001)|01-Jan-2001||http://x|0|0|1\n20|Unknown||||1|0|0\n".encode("latin-1")
    )
    report = ingest_interactions(folder / "u.data", tmp_path / "out")
    items = read(tmp_path / "out", "items")
    assert report.items_with_title == 2
    assert items == {
        "item_id": ["10", "20"],
        "title": ["Amélie (2001)", "Unknown"],
        "year": [2001, None],
        "genres": [["Comedy"], ["unknown"]],
    }


def test_hm_style_csv_with_dates_and_an_items_file(tmp_path):
    source = tmp_path / "transactions_train.csv"
    source.write_text(
        "t_dat,customer_id,article_id,price,sales_channel_id\n"
        "2018-09-20,c1,0663713001,0.05,2\n"
        "2018-09-21,c2,0541518023,0.03,2\n"
        "2018-09-21,c1,0541518023,0.03,1\n"
    )
    articles = tmp_path / "articles.csv"
    articles.write_text('article_id,prod_name\n0663713001,"Atlanta, Push Body"\n0999,Never\n')
    report = ingest_interactions(
        source,
        tmp_path / "out",
        mapping=ColumnMapping(user="customer_id", item="article_id", timestamp="t_dat"),
        items=articles,
        item_columns=ItemColumns(item="article_id", title="prod_name"),
    )
    table = read(tmp_path / "out")
    assert report.format == "mapped" and (report.rows_written, report.users) == (3, 2)
    assert table["item_id"] == ["0663713001", "0541518023", "0541518023"]
    assert table["timestamp"] == [
        datetime(2018, 9, 20),
        datetime(2018, 9, 21),
        datetime(2018, 9, 21),
    ]
    assert table["rating"] == [None, None, None]
    items = read(tmp_path / "out", "items")
    assert items["item_id"] == ["0541518023", "0663713001", "0999"]
    assert items["title"] == [None, "Atlanta, Push Body", "Never"]


def test_mapped_parquet_with_typed_columns_and_zoned_text(tmp_path):
    source = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "who": [7, 8, 9],
                "what": ["a", "b", "c"],
                "when": ["2020-01-01T10:00:00+02:00", "2020-01-01 09:30:00", "2020-01-02"],
                "stars": [4.5, None, 1.0],
            }
        ),
        source,
    )
    mapping = ColumnMapping(user="who", item="what", timestamp="when", rating="stars")
    ingest_interactions(source, tmp_path / "out", mapping=mapping)
    table = read(tmp_path / "out")
    assert table["user_id"] == ["7", "8", "9"]
    assert table["timestamp"] == [
        datetime(2020, 1, 1, 8),
        datetime(2020, 1, 1, 9, 30),
        datetime(2020, 1, 2),
    ]
    assert table["rating"] == [4.5, None, 1.0]


def test_playlist_parquet_becomes_interactions_with_dbt_track_keys(tmp_path):
    rows = [
        ("u1", "a|||b", "c", "p"),
        ("u1", "  a  ", " b\\c ", "p"),
        ("u2", "", "x", "q"),  # blank artist: no track key, dbt drops it
    ]
    source = tmp_path / "playlist_events.parquet"
    columns = list(zip(*rows, strict=True))
    pq.write_table(
        pa.table(
            {"row_id": [10, 11, 12], **dict(zip(CANONICAL_SCHEMA.names[1:], columns, strict=True))},
            schema=CANONICAL_SCHEMA,
        ),
        source,
    )
    report = ingest_interactions(source, tmp_path / "out")
    table = read(tmp_path / "out")
    assert report.format == "playlist_parquet"
    assert table["item_id"] == ["a\\|\\|\\|b|||c", "a|||b\\\\c", None]
    assert table["timestamp"] == [utc(10), utc(11), utc(12)]
    assert report.missing["item_id"] == 1
    items = read(tmp_path / "out", "items")
    assert items["title"] == ["a|||b - c", "a - b\\c"]


def test_malformed_and_blank_lines_are_counted_and_named(tmp_path):
    source = tmp_path / "events.csv"
    source.write_text("user,item,ts\nu1,i1,100\nu1,i2\n\nu2,i1,200,extra\nu2,i3,300\n")
    report = ingest_interactions(
        source, tmp_path / "out", mapping=ColumnMapping(user="user", item="item", timestamp="ts")
    )
    assert report.rows_written == 2 and read(tmp_path / "out")["item_id"] == ["i1", "i3"]
    assert report.dropped == {"malformed_line": 2, "blank_line": 1}
    assert report.dropped_examples == [
        "events.csv line 3: 2 fields, expected 3",
        "events.csv line 5: 4 fields, expected 3",
        "events.csv line 4: blank",
    ]


HEADER = "user,item,ts,stars\n"
MAPPING = ColumnMapping(user="user", item="item", timestamp="ts", rating="stars")


@pytest.mark.parametrize(
    ("lines", "mapping", "message"),
    [
        # line 5 after a malformed line 3 and a blank line 4: physical lines are counted
        (
            ["u,i,100,4", "u,i", "", "u,j,abc,4"],
            MAPPING,
            "line 5, column 'ts': timestamp abc is not a number",
        ),
        (
            ["u,i,2018-09-20,4", "u,j,2018-13-45,4"],
            MAPPING,
            "line 3, column 'ts': timestamp 2018-13-45 is not a date or datetime",
        ),
        (
            ["u,i,100,4", "u,j,200,four"],
            MAPPING,
            "line 3, column 'stars': rating four is not a number",
        ),
        (
            ["u,i,1537401600000,4"],
            MAPPING,
            "line 2, column 'ts': timestamp 1537401600000.0 is not epoch",
        ),
        (
            ["u,i,20/09/2018,4", "u,j,2018-09-21,4"],
            ColumnMapping(user="user", item="item", timestamp="ts", timestamp_format="%d/%m/%Y"),
            "line 3, column 'ts': timestamp 2018-09-21 does not match the format '%d/%m/%Y'",
        ),
        (
            ["u,i,100,4"],
            ColumnMapping(user="customer_id", item="item", timestamp="ts"),
            "line 1 (header): no column 'customer_id'",
        ),
    ],
)
def test_bad_values_name_file_line_and_column(tmp_path, lines, mapping, message):
    source = tmp_path / "events.csv"
    source.write_text(HEADER + "\n".join(lines) + "\n")
    with pytest.raises(SourceError) as error:
        ingest_interactions(source, tmp_path / "out", mapping=mapping)
    assert str(error.value).startswith(str(source)), error.value
    assert message in str(error.value)


def test_recbole_bad_timestamp_and_header(tmp_path):
    source = tmp_path / "x.inter"
    source.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t3.5\n1\t3\tsoon\n")
    with pytest.raises(SourceError, match=r"x\.inter: line 3, column 'timestamp': timestamp soon"):
        ingest_interactions(source, tmp_path / "out")
    source.write_text("user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(SourceError, match=r"line 1: no field 'timestamp' in the RecBole header"):
        ingest_interactions(source, tmp_path / "out")


def test_missing_parquet_column_and_unknown_layout(tmp_path):
    source = tmp_path / "events.parquet"
    pq.write_table(pa.table({"user": ["u"], "item": ["i"]}), source)
    mapping = ColumnMapping(user="user", item="item", timestamp="ts")
    with pytest.raises(SourceError, match=r"events\.parquet: Parquet schema: no column 'ts'"):
        ingest_interactions(source, tmp_path / "out", mapping=mapping)
    with pytest.raises(SourceError, match="pass a column mapping"):
        ingest_interactions(source, tmp_path / "out")


def test_failed_ingest_keeps_the_previous_tables(shared_data, tmp_path):
    out = tmp_path / "out"
    ingest_interactions(shared_data / "movielens_100k", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.inter"
    bad.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tnever\n")
    with pytest.raises(SourceError):
        ingest_interactions(bad, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(before) == ["interactions.parquet", "items.parquet"]


def test_items_csv_row_with_wrong_field_count(tmp_path):
    source = tmp_path / "t.csv"
    source.write_text("user_id,item_id,timestamp\nu,i,1\n")
    articles = tmp_path / "articles.csv"
    with articles.open("w", newline="") as f:
        csv.writer(f).writerows([["item_id", "title"], ["i", "ok"], ["j"]])
    with pytest.raises(SourceError, match=r"articles\.csv: line 3: 1 fields, expected 2"):
        ingest_interactions(source, tmp_path / "out", items=articles)
