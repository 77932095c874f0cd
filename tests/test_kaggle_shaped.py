"""The Kaggle-shaped CSV writer at a tiny fraction: the real file's header and grouping, counts that
scale, a long tail, and a manifest that agrees with what Python's csv module and our reader see."""

import csv
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml.sources import ingest
from ml.sources.canonical import IngestReport
from ml.sources.kaggle_shaped import (
    FIELDS_OF_KIND,
    KAGGLE_DISTINCT_TRACKS,
    KAGGLE_PLAYLISTS,
    KAGGLE_ROWS,
    KAGGLE_USERS,
    KaggleShapedManifest,
    KaggleShapedSpec,
    MalformedKind,
    main,
    manifest_path,
    write_kaggle_shaped,
)

FRACTION = 0.005  # 64k lines: big enough for a tail, written in well under a second


@pytest.fixture(scope="module")
def shaped(tmp_path_factory) -> tuple[Path, KaggleShapedManifest]:
    """Without unbalanced quotes, so Python's csv module can serve as the reference reader
    (an unclosed quote makes it swallow lines); those have a test of their own."""
    path = tmp_path_factory.mktemp("kaggle_shaped") / "spotify_dataset.csv"
    spec = KaggleShapedSpec(fraction=FRACTION, unbalanced_quote_share=0.0)
    return path, write_kaggle_shaped(spec, path)


@pytest.fixture(scope="module")
def records(shaped) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every data line, as Python's csv module splits it."""
    path, _ = shaped
    with path.open(encoding="utf-8", newline="") as f:
        return list(enumerate(csv.reader(f), start=1))[1:]


@pytest.fixture(scope="module")
def rows(shaped, records) -> list[list[str]]:
    """The fields of the lines the manifest does not call malformed."""
    broken = malformed_lines(shaped[1])
    return [fields for number, fields in records if number not in broken]


def malformed_lines(manifest: KaggleShapedManifest) -> dict[int, MalformedKind]:
    return {
        line: MalformedKind(kind) for kind, lines in manifest.malformed.items() for line in lines
    }


def runs(values: list) -> int:
    """How many blocks of equal consecutive values."""
    return sum(1 for i, value in enumerate(values) if i == 0 or value != values[i - 1])


def test_header_is_the_real_files_first_line(shaped, shared_data):
    path, _ = shaped
    sample = shared_data / "kaggle_spotify_sample" / "spotify_dataset_sample.csv"
    with path.open("rb") as written, sample.open("rb") as real:
        assert written.readline() == real.readline()


def test_names_with_commas_and_quotes_are_quoted(shaped, rows):
    path, _ = shaped
    text = path.read_text(encoding="utf-8")
    assert any("," in artist for _, artist, _, _ in rows)
    assert any('"' in track for _, _, track, _ in rows)
    assert any("," in playlist for _, _, _, playlist in rows)
    assert any(artist == "" for _, artist, _, _ in rows)
    assert '(12"" Mix)"' in text  # a quote inside a name is doubled


def test_every_line_the_manifest_calls_malformed_and_no_other_has_wrong_fields(shaped, records):
    _, manifest = shaped
    broken = malformed_lines(manifest)
    wrong = {number: len(fields) for number, fields in records if len(fields) != 4}
    assert wrong == {line: FIELDS_OF_KIND[kind] for line, kind in broken.items()}
    assert 0.007 * manifest.lines < len(broken) < 0.013 * manifest.lines


def test_rows_are_grouped_by_user_then_playlist(shaped, rows):
    _, manifest = shaped
    users = [user for user, _, _, _ in rows]
    playlists = [(user, playlist) for user, _, _, playlist in rows]
    assert runs(users) == len(set(users)) == manifest.users
    assert runs(playlists) == len(set(playlists)) == manifest.playlists
    assert all(re.fullmatch(r"[0-9a-f]{32}", user) for user in set(users))


def test_counts_scale_with_the_fraction(shaped, records):
    _, manifest = shaped
    assert manifest.lines == len(records) == round(KAGGLE_ROWS * FRACTION)
    assert manifest.rows == manifest.lines - len(malformed_lines(manifest))
    assert manifest.users == round(KAGGLE_USERS * FRACTION)
    # a playlist vanishes only when every one of its lines is malformed
    assert 0.99 * round(KAGGLE_PLAYLISTS * FRACTION) <= manifest.playlists
    assert manifest.playlists <= round(KAGGLE_PLAYLISTS * FRACTION)
    assert manifest.mean_playlist_length == pytest.approx(KAGGLE_ROWS / KAGGLE_PLAYLISTS, 1e-3)


def test_ingest_skips_exactly_the_malformed_lines_of_the_manifest(shaped, tmp_path, monkeypatch):
    path, manifest = shaped
    skipped: list[str] = []  # the report keeps only the first 20: record every one
    record = IngestReport.record_malformed

    def record_every(report: IngestReport, where: str, *args) -> None:
        skipped.append(where)
        record(report, where, *args)

    monkeypatch.setattr(IngestReport, "record_malformed", record_every)
    report = ingest(path, tmp_path / "raw.parquet")
    broken = malformed_lines(manifest)
    reported = {}
    for where in skipped:
        line, fields = re.match(r"line (\d+): (\d+) fields", where).groups()
        reported[int(line)] = int(fields)
    assert report.malformed_lines == len(skipped) == len(broken)
    assert reported == {line: FIELDS_OF_KIND[kind] for line, kind in broken.items()}
    assert report.rows_written == manifest.rows
    table = pq.read_table(tmp_path / "raw.parquet").to_pydict()
    tracks = set(zip(table["artist"], table["track"], strict=True))
    assert len(tracks) == manifest.distinct_tracks
    assert len(set(zip(table["user_id"], table["playlist"], strict=True))) == manifest.playlists


def test_lengths_have_a_heavy_tail_and_most_tracks_are_rare(shaped, rows):
    _, manifest = shaped
    lengths = list(Counter((user, playlist) for user, _, _, playlist in rows).values())
    mean = statistics.mean(lengths)
    assert mean == pytest.approx(manifest.rows / manifest.playlists)
    assert mean == pytest.approx(55, abs=2)
    assert statistics.median(lengths) < 0.6 * mean
    assert max(lengths) > 8 * mean
    plays = Counter((artist, track) for _, artist, track, _ in rows)
    assert len(plays) == manifest.distinct_tracks
    rare = sum(1 for count in plays.values() if count <= 2)
    assert rare == manifest.tracks_seen_once_or_twice > 0.5 * len(plays)
    kaggle_share = KAGGLE_DISTINCT_TRACKS / KAGGLE_ROWS
    assert 0.8 * kaggle_share < len(plays) / len(rows) < 1.5 * kaggle_share


def test_same_seed_same_file_other_seed_other_file(tmp_path):
    written = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        path = tmp_path / f"{name}.csv"
        write_kaggle_shaped(KaggleShapedSpec(fraction=0.001, seed=seed), path)
        written[name] = path.read_bytes()
    assert written["a"] == written["b"]
    assert written["a"] != written["c"]
    assert len(written["a"]) > 500_000


def test_cli_writes_the_csv_and_its_manifest(tmp_path, capsys):
    out = tmp_path / "spotify_dataset.csv"
    main(["--fraction", "0.001", "--seed", "3", "--out", str(out)])
    summary = json.loads(capsys.readouterr().out)
    saved = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert (
        summary["lines"] == saved["lines"] == len(out.read_text(encoding="utf-8").splitlines()) - 1
    )
    assert summary["malformed_lines"] == {
        kind: len(lines) for kind, lines in saved["malformed"].items()
    }


def test_an_unbalanced_quote_costs_only_its_own_line(tmp_path):
    path = tmp_path / "spotify_dataset.csv"
    spec = KaggleShapedSpec(fraction=0.001, unbalanced_quote_share=0.002)
    manifest = write_kaggle_shaped(spec, path)
    assert manifest.malformed[MalformedKind.UNBALANCED_QUOTE]
    report = ingest(path, tmp_path / "raw.parquet")
    assert report.malformed_lines == len(malformed_lines(manifest))
    assert report.rows_written == manifest.rows
