"""Each loader on the real files in ../shared/data, counted against the files themselves, and on
small hand-made bad inputs."""

import csv
import errno
import gzip
import io
import json
import lzma
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.sources import SourceError, detect_format, ingest, kaggle
from ml.sources.canonical import OutOfSpaceError
from ml.sources.synthetic import SyntheticSpec, generate_rows


def read(path: Path) -> dict[str, list]:
    return pq.read_table(path).to_pydict()


def test_kaggle_sample_maps_every_row_in_order(shared_data, tmp_path):
    source = shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv"
    with source.open(encoding="utf-8") as f:
        expected = list(csv.reader(f))[1:]
    report = ingest(source, tmp_path / "raw.parquet")
    table = read(tmp_path / "raw.parquet")
    assert report.format == "kaggle_csv" and report.malformed_lines == 0
    assert report.rows_written == len(expected) == 500
    assert table["row_id"] == list(range(500))
    got = list(
        zip(table["user_id"], table["artist"], table["track"], table["playlist"], strict=True)
    )
    assert got == [tuple(row) for row in expected]
    assert sum(1 for row in expected if row[1] == "") == table["artist"].count("") > 0


def test_kaggle_malformed_lines_are_skipped_counted_and_named(shared_data, tmp_path):
    sample = shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv"
    lines = sample.read_text(encoding="utf-8").splitlines()[:6]
    lines[3] = "u2,too,many,fields,here"
    lines.insert(5, "u3,too few")
    source = tmp_path / "spotify_dataset.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(source, tmp_path / "raw.parquet")
    assert report.rows_written == 4
    assert report.malformed_lines == 2
    assert report.malformed_examples == [
        "line 4: 5 fields, expected 4",
        "line 6: 2 fields, expected 4",
    ]


def test_mpd_slice_file_and_folder(shared_data, tmp_path):
    slice_path = shared_data / "mpd_sample" / "mpd.slice.0-999.json"
    playlists = json.loads(slice_path.read_text(encoding="utf-8"))["playlists"]
    expected = [
        (f"mpd:{p['pid']}", t["artist_name"], t["track_name"], p["name"])
        for p in playlists
        for t in sorted(p["tracks"], key=lambda t: t["pos"])
    ]
    for source in (slice_path, slice_path.parent):
        report = ingest(source, tmp_path / "raw.parquet")
        table = read(tmp_path / "raw.parquet")
        assert report.format == "mpd_json"
        assert len(playlists) == 29 and report.rows_written == len(expected) == 1448
        got = zip(table["user_id"], table["artist"], table["track"], table["playlist"], strict=True)
        assert list(got) == expected


def test_mpd_folder_of_slices_keeps_numeric_slice_order_and_names_a_bad_slice(
    shared_data, tmp_path
):
    document = json.loads((shared_data / "mpd_sample" / "mpd.slice.0-999.json").read_bytes())
    playlists = document["playlists"]
    parts = {"mpd.slice.0-1.json": playlists[:10], "mpd.slice.2-9.json": playlists[10:20]}
    parts["mpd.slice.10-28.json.gz"] = playlists[20:]  # text order would put it second
    folder = tmp_path / "mpd"
    folder.mkdir()
    for name, part in parts.items():
        content = json.dumps({**document, "playlists": part}).encode()
        _write(folder / name, gzip.compress(content) if name.endswith(".gz") else content)
    report = ingest(folder, tmp_path / "raw.parquet")
    assert read(tmp_path / "raw.parquet")["user_id"] == [
        f"mpd:{p['pid']}" for p in playlists for _ in p["tracks"]
    ]
    assert report.files == [str(folder / name) for name in parts]
    bad = _write(folder / "mpd.slice.29-29.json", b'{"playlists": [{"pid": 29}]}')
    with pytest.raises(SourceError, match=f"{bad}: playlist #0 is not an MPD playlist"):
        ingest(folder, tmp_path / "raw.parquet")


def test_yes_small_has_every_playlist_of_train_txt(shared_data, tmp_path):
    folder = shared_data / "yes_small"
    playlist_lines = (folder / "train.txt").read_text().splitlines()[2:]
    songs = [line.split("\t") for line in (folder / "song_hash.txt").read_text().splitlines()]
    report = ingest(folder, tmp_path / "raw.parquet")
    table = read(tmp_path / "raw.parquet")
    assert report.format == "yes_com"
    assert len(set(table["playlist"])) == len(playlist_lines) == 41_480
    assert report.rows_written == sum(len(line.split()) for line in playlist_lines)
    first = [int(token) for token in playlist_lines[0].split()]
    n = len(first)
    assert table["playlist"][:n] == ["train:000001"] * n
    assert table["track"][:n] == [songs[i][1].replace("\\/", "/") for i in first]
    assert table["artist"][:n] == [songs[i][2] for i in first]


def test_synthetic_is_deterministic_and_scales(tmp_path):
    small = SyntheticSpec(playlists=200, seed=7)
    ingest(None, tmp_path / "a.parquet", synthetic=small)
    ingest(None, tmp_path / "b.parquet", synthetic=small)
    ingest(None, tmp_path / "c.parquet", synthetic=SyntheticSpec(playlists=200, seed=8))
    ingest(None, tmp_path / "d.parquet", synthetic=SyntheticSpec(playlists=400, seed=7))
    a, b, c, d = (read(tmp_path / f"{x}.parquet") for x in "abcd")
    assert a == b
    assert a["track"] != c["track"]
    assert len(set(d["playlist"])) == 2 * len(set(a["playlist"])) == 400


def test_canonical_parquet_round_trip(tmp_path):
    ingest(None, tmp_path / "first.parquet", synthetic=SyntheticSpec(playlists=50))
    report = ingest(tmp_path / "first.parquet", tmp_path / "second.parquet")
    assert report.format == "canonical_parquet"
    assert read(tmp_path / "first.parquet") == read(tmp_path / "second.parquet")


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("notes.txt", b"hello world\n", "unknown format"),
        ("wrong.csv", b"a,b,c\n1,2,3\n", "CSV header is ['a', 'b', 'c']"),
        ("other.json", b'{"users": [1, 2]}', "not a Million Playlist Dataset slice"),
        ("list.json", b'[{"playlists": 1}]', "not a Million Playlist Dataset slice"),
        (
            "latin1.csv",
            b'user_id," ""artistname"""," ""trackname"""," ""playlistname"""\n'
            b"u1,Beyonc\xe9,Halo,PL\n",
            "line 2 is not UTF-8 text",
        ),
        ("header_only.csv", b'user_id,"artistname","trackname","playlistname"\n', "no playlist"),
        ("bad.parquet", b"PAR1 this is not parquet", "not a readable Parquet file"),
    ],
)
def test_bad_files_fail_with_the_path_and_what_was_expected(tmp_path, name, content, message):
    path = _write(tmp_path / name, content)
    with pytest.raises(SourceError) as error:
        ingest(path, tmp_path / "raw.parquet")
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_folder_without_usable_file_and_missing_path(tmp_path):
    (tmp_path / "inbox").mkdir()
    _write(tmp_path / "inbox" / "readme.md", b"nothing")
    with pytest.raises(SourceError, match="folder has no usable file"):
        detect_format(tmp_path / "inbox")
    with pytest.raises(SourceError, match="no such file or folder"):
        detect_format(tmp_path / "missing.csv")


def test_parquet_with_wrong_schema_is_refused(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"user": ["u"], "song": ["s"]}), tmp_path / "x.parquet")
    with pytest.raises(SourceError, match=r"lacks columns \['row_id', 'user_id'"):
        ingest(tmp_path / "x.parquet", tmp_path / "raw.parquet")


def test_failed_ingest_keeps_the_previous_table(tmp_path):
    output = tmp_path / "raw.parquet"
    ingest(None, output, synthetic=SyntheticSpec(playlists=20))
    before = read(output)
    bad = _write(tmp_path / "bad.json", b'{"playlists": [{"pid": 1}]}')
    with pytest.raises(SourceError, match="pid"):
        ingest(bad, output)
    assert read(output) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


KAGGLE_HEADER = 'user_id," ""artistname"""," ""trackname"""," ""playlistname"""'
UNBALANCED = 'u1,"Unbalanced Artist,Song X,Pl'


def synthetic_kaggle_rows(n: int) -> list[tuple[str, str, str, str]]:
    """n rows shaped like Kaggle's, some with commas and quotes that need CSV quoting."""
    batches = generate_rows(SyntheticSpec(playlists=n // 10, seed=3))
    rows = [row for batch in batches for row in batch]
    return [
        (user, artist or "", f'{track}, "live"' if i % 7 == 0 else track, playlist)
        for i, (user, artist, track, playlist) in enumerate(rows[:n])
    ]


def write_kaggle(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_bytes((newline.join([KAGGLE_HEADER, *lines]) + newline).encode("utf-8"))
    return path


def csv_line(row: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def assert_every_line_accounted(report) -> None:
    assert report.lines_in_file == (
        report.header_lines
        + report.rows_written
        + report.continuation_lines
        + report.malformed_lines
        + report.blank_lines
    )


@pytest.mark.parametrize("read_bytes", [None, 1_000])  # 1,000: rows and quotes cross blocks
def test_kaggle_unbalanced_quotes_swallow_no_good_row(tmp_path, monkeypatch, read_bytes):
    if read_bytes:
        monkeypatch.setattr(kaggle, "READ_BYTES", read_bytes)
    good = synthetic_kaggle_rows(3_000)
    lines = [csv_line(row) for row in good]
    bad_line_numbers = [102, 1_500, 1_501, 2_999]  # physical line numbers, header = line 1
    for number in bad_line_numbers:
        lines.insert(number - 2, UNBALANCED)
    source = write_kaggle(tmp_path / "spotify_dataset.csv", lines)
    report = ingest(source, tmp_path / "raw.parquet")
    table = read(tmp_path / "raw.parquet")
    assert report.rows_written == len(good) == len(table["row_id"])
    got = zip(table["user_id"], table["artist"], table["track"], table["playlist"], strict=True)
    assert list(got) == good
    assert report.malformed_examples == [
        f"line {n}: a quote opened and never closed" for n in bad_line_numbers
    ]
    assert report.lines_in_file == len(lines) + 1 == len(good) + len(bad_line_numbers) + 1
    assert_every_line_accounted(report)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_kaggle_quoting_rules_and_line_numbers(tmp_path, newline):
    long_name = "x" * 1_001
    lines = [
        'u1,"Artist, The",Track,PL',  # 2
        'u1,Artist,"He said ""hi""",PL',  # 3
        'u1,Artist,12" Mix,PL',  # 4: a quote inside an unquoted field is literal
        'u1,Artist,"Two',  # 5-6: one row whose quoted title holds a line break
        'lines",PL',
        UNBALANCED,  # 7
        "",  # 8: blank
        f"u1,Artist,{long_name},PL",  # 9: longer than any name
        "u2,too,many,fields,here",  # 10
        "u3,Last,Row,PL",  # 11
    ]
    source = write_kaggle(tmp_path / "spotify_dataset.csv", lines, newline)
    report = ingest(source, tmp_path / "raw.parquet")
    table = read(tmp_path / "raw.parquet")
    assert list(zip(table["artist"], table["track"], strict=True)) == [
        ("Artist, The", "Track"),
        ("Artist", 'He said "hi"'),
        ("Artist", '12" Mix'),
        ("Artist", f"Two{newline}lines"),
        ("Last", "Row"),
    ]
    assert report.malformed_examples == [
        "line 7: a quote opened and never closed",
        "line 9: a field over 1,000 characters",
        "line 10: 5 fields, expected 4",
    ]
    assert (report.lines_in_file, report.continuation_lines, report.blank_lines) == (11, 1, 1)
    assert_every_line_accounted(report)


@pytest.mark.parametrize(
    ("last_line", "message"),
    [
        ("u9,Artist,Tra", "3 fields, expected 4"),
        ('u9,"Artist, Tr', "a quote opened and never closed"),
    ],
)
def test_kaggle_truncated_file_keeps_what_is_good(tmp_path, last_line, message):
    good = synthetic_kaggle_rows(500)
    lines = [csv_line(row) for row in good]
    source = tmp_path / "spotify_dataset.csv"
    source.write_text("\n".join([KAGGLE_HEADER, *lines, last_line]), encoding="utf-8")
    report = ingest(source, tmp_path / "raw.parquet")
    assert report.rows_written == len(good)
    assert report.last_line_unterminated
    assert report.malformed_examples == [f"line {len(good) + 2}: {message}"]
    assert report.lines_in_file == len(good) + 2
    assert_every_line_accounted(report)


def test_kaggle_names_the_true_line_that_is_not_utf8(tmp_path):
    lines = ["u1,a,b,PL", UNBALANCED, "", 'u1,"Two', 'lines",c,PL']
    source = write_kaggle(tmp_path / "spotify_dataset.csv", lines)
    source.write_bytes(source.read_bytes() + b"u2,Beyonc\xe9,Halo,PL\n")
    with pytest.raises(SourceError, match=r"spotify_dataset.csv: line 7 is not UTF-8 text"):
        ingest(source, tmp_path / "raw.parquet")


def test_kaggle_header_with_an_unclosed_quote_swallows_no_row(tmp_path):
    source = tmp_path / "spotify_dataset.csv"
    source.write_text(KAGGLE_HEADER[:-1] + "\nu1,a,b,PL\nu2,c,d,PL\n", encoding="utf-8")
    report = ingest(source, tmp_path / "raw.parquet")
    assert read(tmp_path / "raw.parquet")["user_id"] == ["u1", "u2"]
    assert (report.lines_in_file, report.malformed_lines) == (3, 0)


def test_kaggle_line_longer_than_any_row_is_skipped_not_held(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle, "READ_BYTES", 64)
    monkeypatch.setattr(kaggle, "MAX_LINE_BYTES", 300)
    lines = ["u1,a,b,PL", "garbage" * 200, "u2,c,d,PL"]
    report = ingest(write_kaggle(tmp_path / "k.csv", lines), tmp_path / "raw.parquet")
    assert read(tmp_path / "raw.parquet")["user_id"] == ["u1", "u2"]
    assert report.malformed_examples == ["line 3: longer than 300 bytes"]
    assert_every_line_accounted(report)


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_stale_temporaries_of_killed_ingests_are_removed(tmp_path):
    output = tmp_path / "raw" / "playlist_events.parquet"
    output.parent.mkdir()
    stale = output.with_name(f".{output.name}.{dead_pid()}.tmp")
    alive = output.with_name(f".{output.name}.{os.getppid()}.tmp")  # another ingest, running
    unrelated = output.with_name(f".{output.name}.notapid.tmp")
    for path in (stale, alive, unrelated):
        path.write_bytes(b"partial parquet")
    logged: list[str] = []
    report = ingest(None, output, synthetic=SyntheticSpec(playlists=20), log=logged.append)
    assert report.stale_temporaries_removed == [str(stale)]
    assert not stale.exists() and alive.exists() and unrelated.exists()
    assert f"removed {stale.name}, left behind by an ingest that was killed" in logged


@pytest.mark.parametrize("failing", ["write_table", "close"])
def test_full_disk_names_the_folder_and_keeps_the_previous_table(tmp_path, monkeypatch, failing):
    output = tmp_path / "raw" / "playlist_events.parquet"
    ingest(None, output, synthetic=SyntheticSpec(playlists=20))
    before = read(output)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq.ParquetWriter, failing, no_space)
    with pytest.raises(OutOfSpaceError) as error:
        ingest(None, output, synthetic=SyntheticSpec(playlists=40))
    monkeypatch.undo()
    assert str(error.value).startswith(f"{output.parent}: no space left")
    assert isinstance(error.value, SourceError)
    assert read(output) == before
    assert [p.name for p in output.parent.iterdir()] == [output.name]


def test_folder_mixing_formats_is_refused_naming_each(shared_data, tmp_path):
    folder = tmp_path / "inbox"
    shutil.copytree(shared_data / "yes_small", folder)
    shutil.copy(shared_data / "mpd_sample" / "mpd.slice.0-999.json", folder)
    shutil.copy(
        shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv",
        folder / "spotify_dataset.csv",
    )
    with pytest.raises(SourceError) as error:
        ingest(folder, tmp_path / "raw.parquet")
    message = str(error.value)
    assert message.startswith(f"{folder}: the folder mixes formats")
    for named in ("Yes.com: song_hash.txt, train.txt", "MPD slices: mpd.slice.0-999.json"):
        assert named in message
    assert "CSV: spotify_dataset.csv" in message
    assert not (tmp_path / "raw.parquet").exists()


def test_folder_with_the_unzipped_kaggle_csv_is_read(shared_data, tmp_path):
    folder = tmp_path / "spotify-playlists"
    folder.mkdir()
    sample = shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv"
    shutil.copy(sample, folder / "spotify_dataset.csv")
    _write(folder / "README.md", b"# Spotify Playlists\n")
    report = ingest(folder, tmp_path / "raw.parquet")
    assert report.format == "kaggle_csv"
    assert report.files == [str(folder / "spotify_dataset.csv")]
    assert report.ignored_files == ["README.md"]
    assert read(tmp_path / "raw.parquet") == read_ingested(sample, tmp_path / "direct.parquet")


def read_ingested(source: Path, output: Path) -> dict[str, list]:
    ingest(source, output)
    return read(output)


def _compress(path: Path, codec: str) -> Path:
    """path compressed with codec beside it (path.gz, .bz2, .zst, .xz)."""
    suffix = {"gzip": ".gz", "bz2": ".bz2", "zstd": ".zst", "xz": ".xz"}[codec]
    target = path.with_name(path.name + suffix)
    if codec == "xz":
        target.write_bytes(lzma.compress(path.read_bytes()))
    else:
        with pa.CompressedOutputStream(str(target), codec) as out:
            out.write(path.read_bytes())
    return target


@pytest.mark.parametrize("codec", ["gzip", "bz2", "zstd", "xz"])
def test_compressed_csv_and_mpd_slices_are_read(shared_data, tmp_path, codec):
    csv_path = tmp_path / "spotify_dataset.csv"
    shutil.copy(shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv", csv_path)
    slices = tmp_path / "mpd"
    slices.mkdir()
    shutil.copy(shared_data / "mpd_sample" / "mpd.slice.0-999.json", slices)
    plain_slice = slices / "mpd.slice.0-999.json"
    expected_csv = read_ingested(csv_path, tmp_path / "plain_csv.parquet")
    expected_mpd = read_ingested(plain_slice, tmp_path / "plain_mpd.parquet")
    compressed_slice = _compress(plain_slice, codec)
    plain_slice.unlink()
    for source, expected in (
        (_compress(csv_path, codec), expected_csv),
        (compressed_slice, expected_mpd),
        (slices, expected_mpd),
    ):
        report = ingest(source, tmp_path / "raw.parquet")
        assert read(tmp_path / "raw.parquet") == expected, source
        assert report.rows_written == len(expected["row_id"]) > 0


def test_truncated_or_zipped_archives_are_refused_clearly(shared_data, tmp_path):
    sample = shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv"
    whole = gzip.compress(sample.read_bytes() * 20)
    cut = _write(tmp_path / "spotify_dataset.csv.gz", whole[: len(whole) // 2])
    with pytest.raises(SourceError, match=r"gzip data is truncated or corrupt after [\d,]+ "):
        ingest(cut, tmp_path / "raw.parquet")
    archive = tmp_path / "spotify_dataset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(sample, "spotify_dataset.csv")
    with pytest.raises(SourceError, match=r"a zip archive; unpack it first \(unzip "):
        ingest(archive, tmp_path / "raw.parquet")


def test_mpd_tracks_without_pos_are_read_in_list_order_and_counted(shared_data, tmp_path):
    document = json.loads((shared_data / "mpd_sample" / "mpd.slice.0-999.json").read_bytes())
    playlists = document["playlists"]
    for playlist in playlists[::2]:  # a derivative that dropped 'pos' (list order is the order)
        for track in playlist["tracks"]:
            del track["pos"]
    playlists[1]["tracks"].reverse()  # 'pos' present: it, not the list, gives the order
    source = _write(tmp_path / "mpd.slice.0-999.json", json.dumps(document).encode())
    logged: list[str] = []
    report = ingest(source, tmp_path / "raw.parquet", log=logged.append)
    expected = [
        (f"mpd:{p['pid']}", t["track_name"])
        for i, p in enumerate(playlists)
        for t in (p["tracks"] if i % 2 == 0 else sorted(p["tracks"], key=lambda t: t["pos"]))
    ]
    table = read(tmp_path / "raw.parquet")
    assert list(zip(table["user_id"], table["track"], strict=True)) == expected
    assert report.playlists_without_pos == 15
    assert "15 playlists had tracks without 'pos': read in list order" in logged


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("row_id", pa.array(["0", "1"]), "row_id is string, expected an integer (int64)"),
        ("artist", pa.array([["a"], ["b"]]), "artist is list<element: string>, expected text"),
        ("track", pa.array([1.5, 2.5]), "track is double, expected text (string)"),
    ],
)
def test_parquet_with_wrong_column_types_names_the_column(tmp_path, column, values, message):
    columns = {
        "row_id": pa.array([0, 1]),
        **{name: pa.array(["x", "y"]) for name in ("user_id", "artist", "track", "playlist")},
    }
    columns[column] = values
    pq.write_table(pa.table(columns), tmp_path / "events.parquet")
    with pytest.raises(SourceError) as error:
        ingest(tmp_path / "events.parquet", tmp_path / "raw.parquet")
    assert str(error.value).startswith(f"{tmp_path / 'events.parquet'}: wrong column types: ")
    assert message in str(error.value)


def test_parquet_with_dictionary_names_and_int32_row_id_is_read(tmp_path):
    table = pa.table(
        {
            "row_id": pa.array([5, 9], pa.int32()),
            "user_id": pa.array(["u", "u"]).dictionary_encode(),
            "artist": pa.array([None, None], pa.null()),
            "track": pa.array(["t1", "t2"], pa.large_string()),
            "playlist": pa.array(["p", "p"]),
        }
    )
    pq.write_table(table, tmp_path / "events.parquet")
    ingest(tmp_path / "events.parquet", tmp_path / "raw.parquet")
    assert read(tmp_path / "raw.parquet") == {
        "row_id": [0, 1],
        "user_id": ["u", "u"],
        "artist": [None, None],
        "track": ["t1", "t2"],
        "playlist": ["p", "p"],
    }
