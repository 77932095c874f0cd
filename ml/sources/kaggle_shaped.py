"""A CSV shaped like Kaggle's "Spotify Playlists" file, at any fraction of its scale.

At fraction 1.0 it has the real file's shape: 12,891,680 data lines, 232,369 playlists (user +
name) of 15,918 users, mean playlist length 55 with a log-normal tail up to several thousand,
~2.8M distinct tracks with Zipf popularity so that most occur once or twice, rows grouped by user
then playlist, the real header's stray spaces and doubled quotes, quoted names holding commas or
quotes, and ~1% malformed lines (wrong field counts, and a few quotes never closed). At fraction f
users, playlists and rows scale by f, and the catalogue is sized so that distinct tracks stay the
same share of rows as in Kaggle's file.

Sequences carry the synthetic generator's signal: tracks have genres and artists, and a playlist
walks mostly to one of the current track's fixed successors, sometimes to a popular track of its
genre, rarely anywhere. The walk is vectorised over chunks of playlists, so the full-size file is
written in minutes in bounded memory. Same spec, same bytes.

    python -m ml.sources.kaggle_shaped --fraction 0.01 --out spotify_dataset.csv
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

from ml.sources.synthetic import GENRES, Catalog, draw_from_cdf, zipf_weights

KAGGLE_ROWS = 12_891_680
KAGGLE_PLAYLISTS = 232_369
KAGGLE_USERS = 15_918
KAGGLE_DISTINCT_TRACKS = 2_819_059
# Byte for byte the real file's first line.
HEADER = 'user_id," ""artistname"""," ""trackname"""," ""playlistname"""\n'
# Successor steps revisit tracks, so the walk reaches fewer distinct tracks than independent
# draws would: size the catalogue for this much more. Measured: 2.87M distinct tracks at
# fraction 1.0 (Kaggle: 2.82M); at 0.5-1% the share comes out ~25% above Kaggle's, because long
# playlists in a small catalogue repeat tracks and the repeats are replaced by rarer ones.
DISTINCT_SHARE_CORRECTION = 1.07
CHUNK_ROWS = 250_000  # rows generated and formatted at once: bounds memory
CALIBRATION_BLOCK = 1 << 20
# Base playlist names (a user's later playlists get " 2", " 3", ...: names never end in a digit,
# so a (user, name) pair is unique). Some need quoting, some are not ASCII.
PLAYLIST_NAMES = [
    "Starred", "Liked from Radio", "Favourites", "Road Trip", "Chill", "Workout", "Party",
    "Late Night", "Focus", "Sunday Morning", "Rock, Pop & Everything", 'My "Guilty" Pleasures',
    "Canciones de Verano", "Für Unterwegs", "Soul, Funk and Disco", "Throwbacks", "Mix",
    "Dinner", "Running", "Oldies", "New Music", "Covers", "Acoustic", "Study",
]  # fmt: skip
TITLE_WORDS = [
    "Midnight", "Golden", "Broken", "Electric", "Summer", "Lonely", "Wild", "Silver",
    "Falling", "Neon", "Quiet", "Burning", "Paper", "Endless", "Velvet", "Northern",
]  # fmt: skip
TITLE_NOUNS = [
    "Echoes", "Hearts", "River", "Lights", "Dreams", "Roads", "Skies", "Fire",
    "Waves", "Shadows", "Rain", "Stars", "Garden", "City", "Mirror", "Horizon",
]  # fmt: skip


class MalformedKind(StrEnum):
    TOO_MANY_FIELDS = "too_many_fields"  # a title with an unquoted comma: 5 fields
    TOO_FEW_FIELDS = "too_few_fields"  # the artist field missing: 3 fields
    UNBALANCED_QUOTE = "unbalanced_quote"  # a field opened with a quote never closed


FIELDS_OF_KIND = {MalformedKind.TOO_MANY_FIELDS: 5, MalformedKind.TOO_FEW_FIELDS: 3}


@dataclass(frozen=True)
class KaggleShapedSpec:
    fraction: float = 0.01
    seed: int = 42
    zipf_exponent: float = 0.9  # tracks seen <= 2 times: 77% at fraction 1.0, 68% at 1%
    length_sigma: float = 1.3  # log-normal playlist lengths: median ~23, mean 55
    successors: int = 4
    p_successor: float = 0.65
    p_genre: float = 0.28  # otherwise: anything, by global popularity
    p_second_genre: float = 0.3
    wrong_field_count_share: float = 0.01  # of data lines
    # Real exports have a few: the reader must count each as one malformed line.
    unbalanced_quote_share: float = 0.001
    blank_artist_share: float = 0.0025  # of tracks: real exports have artist-less tracks

    @property
    def rows(self) -> int:
        return max(self.playlists, round(KAGGLE_ROWS * self.fraction))

    @property
    def playlists(self) -> int:
        return max(self.users, round(KAGGLE_PLAYLISTS * self.fraction))

    @property
    def users(self) -> int:
        return max(1, round(KAGGLE_USERS * self.fraction))


@dataclass
class KaggleShapedManifest:
    """What was written, for checking a reader against it."""

    path: str
    fraction: float
    seed: int
    catalogue_size: int
    lines: int  # data lines after the header, malformed included
    rows: int  # well-formed data lines
    playlists: int  # (user, playlist name) pairs with at least one well-formed row
    users: int  # users with at least one well-formed row
    distinct_tracks: int  # among well-formed rows
    tracks_seen_once_or_twice: int
    mean_playlist_length: float  # in data lines
    max_playlist_length: int
    # kind -> 1-based line numbers (the header is line 1)
    malformed: dict[str, list[int]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")


def manifest_path(csv_path: Path) -> Path:
    return csv_path.with_name(f"{csv_path.stem}.manifest.json")


def expected_distinct(rows: int, catalogue: int, exponent: float) -> float:
    """Expected distinct items in ``rows`` independent Zipf draws from ``catalogue`` items.

    Summed over blocks of ranks, so memory stays small for catalogues of millions.
    """
    ends = [*range(1 + CALIBRATION_BLOCK, catalogue + 1, CALIBRATION_BLOCK), catalogue + 1]
    blocks = list(itertools.pairwise([1, *ends]))  # rank ranges [a, b)
    total = sum(float((np.arange(a, b, dtype=np.float64) ** -exponent).sum()) for a, b in blocks)
    return sum(
        float(-np.expm1(-rows / total * np.arange(a, b, dtype=np.float64) ** -exponent).sum())
        for a, b in blocks
    )


def catalogue_size(rows: int, exponent: float, distinct_share: float) -> int:
    """Smallest catalogue (to 0.5%) whose Zipf draws reach ``distinct_share`` of ``rows``."""
    low, high = int(distinct_share * rows) + 1, int(distinct_share * rows) + 1
    while expected_distinct(rows, high, exponent) < distinct_share * rows:
        low, high = high, 2 * high
    while high - low > max(1, low // 200):
        middle = (low + high) // 2
        if expected_distinct(rows, middle, exponent) < distinct_share * rows:
            low = middle
        else:
            high = middle
    return high


def apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    exact = weights * (total / weights.sum())
    counts = np.floor(exact).astype(np.int64)
    shortfall = total - int(counts.sum())
    counts[np.argsort(counts - exact, kind="stable")[:shortfall]] += 1
    return counts


class ShapedCatalogue(Catalog):
    """The synthetic generator's catalogue, sampled many tracks at a time, with a few
    artist-less tracks."""

    def __init__(self, size: int, spec: KaggleShapedSpec, rng: np.random.Generator):
        # About ten tracks an artist, numbered within the genre (names carry the genre).
        super().__init__(
            size,
            spec.successors,
            rng,
            popularity_exponent=spec.zipf_exponent,
            tracks_per_artist=10,
        )
        self.blank_artist = rng.random(size) < spec.blank_artist_share

    def any_tracks(self, u: np.ndarray) -> np.ndarray:
        return draw_from_cdf(self.global_cdf, u)

    def tracks_of_genre(self, genre: int, u: np.ndarray) -> np.ndarray:
        return self.by_genre[genre][draw_from_cdf(self.genre_track_cdf[genre], u)]

    def genres(self, u: np.ndarray) -> np.ndarray:
        return draw_from_cdf(self.genre_cdf, u)

    def artist_field(self, track: int) -> str:
        return artist_field(
            int(self.genre_of[track]), int(self.artist_of[track]), bool(self.blank_artist[track])
        )

    def fragments(self, tracks: np.ndarray) -> list[str]:
        """``artist,title`` CSV text of each track (artists looked up as whole arrays)."""
        genres, artists = self.genre_of[tracks].tolist(), self.artist_of[tracks].tolist()
        blanks = self.blank_artist[tracks].tolist()
        return [
            f"{artist_field(g, a, b)},{csv_field(title(t))}"
            for t, g, a, b in zip(tracks.tolist(), genres, artists, blanks, strict=True)
        ]


def artist_field(genre: int, artist: int, blank: bool) -> str:
    if blank:
        return ""
    name = GENRES[genre].title()
    if artist % 97 == 5:
        return f'"{name} Ensemble {artist:05d}, Cambridge"'
    if artist % 89 == 3:
        return f"{name} Artist {artist:05d} & Café Trio"
    return f"{name} Artist {artist:05d}"


def plain_title(track: int) -> str:
    """A title without commas or quotes: unique per track, about as long as real ones."""
    return f"{TITLE_WORDS[track % 16]} {TITLE_NOUNS[track // 16 % 16]} {track:07d}"


def title(track: int) -> str:
    if track % 31 == 7:
        return f"{plain_title(track)}, Pt. 2"
    if track % 53 == 11:
        return f'{plain_title(track)} (12" Mix)'
    if track % 71 == 13:
        return f"{plain_title(track)} (feat. Ørjan)"
    return plain_title(track)


def csv_field(text: str) -> str:
    """Quoted (quotes doubled) only when the text holds a comma, a quote or a line break."""
    if "," in text or '"' in text or "\n" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def malformed_line(
    catalogue: ShapedCatalogue, user_id: str, track: int, playlist: str, kind: MalformedKind
) -> str:
    """A whole data line broken the way real exports are."""
    artist = catalogue.artist_field(track)
    if kind is MalformedKind.TOO_MANY_FIELDS:  # a title with a comma nobody quoted
        return f"{user_id},{artist},{plain_title(track)}, Live,{csv_field(playlist)}\n"
    if kind is MalformedKind.TOO_FEW_FIELDS:  # the artist field lost
        return f"{user_id},{csv_field(title(track))},{csv_field(playlist)}\n"
    # The last field opens a quote the line never closes.
    name = playlist.replace('"', "")
    return f'{user_id},{artist},{csv_field(title(track))},"{name}\n'


@dataclass
class Playlists:
    """Every playlist's user, name and length, in file order (grouped by user)."""

    user_ids: list[str]
    user_of: np.ndarray
    names: list[str]
    lengths: np.ndarray


def plan_playlists(spec: KaggleShapedSpec, rng: np.random.Generator) -> Playlists:
    users, playlists = spec.users, spec.playlists
    user_ids = [rng.bytes(16).hex() for _ in range(users)]  # md5-like, as in the real file
    per_user = 1 + apportion(playlists - users, rng.lognormal(0.0, 1.2, size=users))
    user_of = np.repeat(np.arange(users), per_user)
    nth_of_user = np.arange(playlists) - np.repeat(np.cumsum(per_user) - per_user, per_user)
    bases = draw_from_cdf(
        np.cumsum(zipf_weights(len(PLAYLIST_NAMES), 1.1, rng)), rng.random(playlists)
    )
    names = [
        PLAYLIST_NAMES[b] if n == 0 else f"{PLAYLIST_NAMES[b]} {n + 1}"
        for b, n in zip(bases.tolist(), nth_of_user.tolist(), strict=True)
    ]
    raw_lengths = rng.lognormal(0.0, spec.length_sigma, size=playlists)
    lengths = 1 + apportion(spec.rows - playlists, raw_lengths)
    return Playlists(user_ids, user_of, names, lengths)


def walk(
    catalogue: ShapedCatalogue,
    spec: KaggleShapedSpec,
    lengths: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Track ids of consecutive playlists of these lengths, all walked at once."""
    n, playlists = int(lengths.sum()), len(lengths)
    starts = np.cumsum(lengths) - lengths
    playlist_of_row = np.repeat(np.arange(playlists), lengths)
    first_genre = catalogue.genres(rng.random(playlists))
    second_genre = np.where(
        rng.random(playlists) < spec.p_second_genre,
        catalogue.genres(rng.random(playlists)),
        first_genre,
    )
    genre_of_row = np.where(
        rng.random(n) < 0.5, first_genre[playlist_of_row], second_genre[playlist_of_row]
    )
    genre_of_row[starts] = first_genre
    roll = rng.random(n)
    roll[starts] = spec.p_successor  # a playlist opens with a track of its genre
    tracks = np.empty(n, dtype=np.int32)
    anywhere = np.flatnonzero(roll >= spec.p_successor + spec.p_genre)
    tracks[anywhere] = catalogue.any_tracks(rng.random(len(anywhere)))
    of_genre = np.flatnonzero((roll >= spec.p_successor) & (roll < spec.p_successor + spec.p_genre))
    for genre in range(len(GENRES)):
        rows = of_genre[genre_of_row[of_genre] == genre]
        tracks[rows] = catalogue.tracks_of_genre(genre, rng.random(len(rows)))
    # A successor depends on the track before it: resolve runs of successor steps one step
    # at a time across all runs (runs are short: geometric in p_successor).
    index = np.arange(n)
    is_fresh = roll >= spec.p_successor
    steps_into_run = index - np.maximum.accumulate(np.where(is_fresh, index, 0))
    picks = rng.integers(0, spec.successors, size=n)
    for step in range(1, int(steps_into_run.max(initial=0)) + 1):
        rows = np.flatnonzero(steps_into_run == step)
        tracks[rows] = catalogue.successors[tracks[rows - 1], picks[rows]]
    replace_repeats(catalogue, tracks, playlist_of_row, genre_of_row, rng)
    return tracks


def replace_repeats(
    catalogue: ShapedCatalogue,
    tracks: np.ndarray,
    playlist_of_row: np.ndarray,
    genre_of_row: np.ndarray,
    rng: np.random.Generator,
    rounds: int = 3,
) -> None:
    """Replace, in place, a track already earlier in its playlist by any track of the genre.

    Long playlists would otherwise revisit popular tracks and successor cycles over and over;
    real playlists rarely repeat a track. A few repeats may survive the last round, as in real
    exports.
    """
    for _ in range(rounds):
        key = playlist_of_row.astype(np.int64) * catalogue.size + tracks
        order = np.argsort(key, kind="stable")  # stable: the first occurrence stays first
        repeats = order[1:][key[order][1:] == key[order][:-1]]
        if len(repeats) == 0:
            return
        for genre in range(len(GENRES)):
            rows = repeats[genre_of_row[repeats] == genre]
            pool = catalogue.by_genre[genre]
            tracks[rows] = pool[rng.integers(0, len(pool), size=len(rows))]


def malformed_kinds(spec: KaggleShapedSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per row: -1 if well-formed, else the index of its kind in ``MalformedKind``."""
    kinds = list(MalformedKind)
    u = rng.random(n)
    result = np.full(n, -1, dtype=np.int8)
    wrong = u < spec.wrong_field_count_share
    result[wrong] = np.where(
        rng.random(int(wrong.sum())) < 0.5,
        kinds.index(MalformedKind.TOO_MANY_FIELDS),
        kinds.index(MalformedKind.TOO_FEW_FIELDS),
    )
    unbalanced = (u >= spec.wrong_field_count_share) & (
        u < spec.wrong_field_count_share + spec.unbalanced_quote_share
    )
    result[unbalanced] = kinds.index(MalformedKind.UNBALANCED_QUOTE)
    return result


def chunk_bounds(lengths: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive playlist ranges of about CHUNK_ROWS rows each."""
    ends = np.cumsum(lengths)
    cuts = np.searchsorted(ends, np.arange(CHUNK_ROWS, ends[-1], CHUNK_ROWS), side="left") + 1
    edges = [0, *sorted(set(cuts.tolist()) - {0, len(lengths)}), len(lengths)]
    return list(itertools.pairwise(edges))


def write_kaggle_shaped(spec: KaggleShapedSpec, out: Path) -> KaggleShapedManifest:
    """Write the CSV to ``out`` and its manifest beside it (``<stem>.manifest.json``)."""
    rng = np.random.default_rng(spec.seed)
    share = DISTINCT_SHARE_CORRECTION * KAGGLE_DISTINCT_TRACKS / KAGGLE_ROWS
    size = catalogue_size(spec.rows, spec.zipf_exponent, share)
    catalogue = ShapedCatalogue(size, spec, rng)
    plan = plan_playlists(spec, rng)
    kinds = list(MalformedKind)
    seen = np.zeros(size, dtype=np.int32)
    good_rows_of_playlist = np.zeros(len(plan.lengths), dtype=np.int64)
    malformed: dict[str, list[int]] = {kind.value: [] for kind in MalformedKind}
    line = 1  # the header
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="", buffering=1 << 22) as f:
        f.write(HEADER)
        for first, last in chunk_bounds(plan.lengths):
            lengths = plan.lengths[first:last]
            tracks = walk(catalogue, spec, lengths, rng)
            broken = malformed_kinds(spec, len(tracks), rng)
            playlist_of_row = np.repeat(np.arange(first, last), lengths)
            lines = chunk_lines(catalogue, plan, tracks, playlist_of_row)
            for row in np.flatnonzero(broken >= 0).tolist():
                kind, p = kinds[broken[row]], playlist_of_row[row]
                user_id, track = plan.user_ids[plan.user_of[p]], int(tracks[row])
                lines[row] = malformed_line(catalogue, user_id, track, plan.names[p], kind)
                malformed[kind.value].append(line + 1 + row)
            f.write("".join(lines.tolist()))
            line += len(tracks)
            good = broken < 0
            seen += np.bincount(tracks[good], minlength=size).astype(np.int32)
            starts = np.cumsum(lengths) - lengths
            good_rows_of_playlist[first:last] = np.add.reduceat(good.astype(np.int64), starts)
    has_rows = good_rows_of_playlist > 0
    manifest = KaggleShapedManifest(
        path=str(out),
        fraction=spec.fraction,
        seed=spec.seed,
        catalogue_size=size,
        lines=line - 1,
        rows=int(good_rows_of_playlist.sum()),
        playlists=int(has_rows.sum()),
        users=len(np.unique(plan.user_of[has_rows])),
        distinct_tracks=int((seen > 0).sum()),
        tracks_seen_once_or_twice=int(((seen > 0) & (seen <= 2)).sum()),
        mean_playlist_length=float(plan.lengths.mean()),
        max_playlist_length=int(plan.lengths.max()),
        malformed=malformed,
    )
    manifest.save(manifest_path(out))
    return manifest


def chunk_lines(
    catalogue: ShapedCatalogue, plan: Playlists, tracks: np.ndarray, playlist_of_row: np.ndarray
) -> np.ndarray:
    """Each row's CSV line; names are formatted once per distinct track and playlist."""
    distinct, inverse = np.unique(tracks, return_inverse=True)
    fragments = np.array(catalogue.fragments(distinct), dtype=object)[inverse]
    playlists, row_playlist = np.unique(playlist_of_row, return_inverse=True)
    prefixes = np.array([plan.user_ids[plan.user_of[p]] + "," for p in playlists], dtype=object)
    suffixes = np.array(["," + csv_field(plan.names[p]) + "\n" for p in playlists], dtype=object)
    return prefixes[row_playlist] + fragments + suffixes[row_playlist]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.01, help="of Kaggle's scale")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--unbalanced-quote-share", type=float, default=0.0, help="of data lines (default 0)"
    )
    args = parser.parse_args(argv)
    spec = KaggleShapedSpec(
        fraction=args.fraction, seed=args.seed, unbalanced_quote_share=args.unbalanced_quote_share
    )
    started = time.perf_counter()
    manifest = write_kaggle_shaped(spec, args.out)
    summary = {k: v for k, v in asdict(manifest).items() if k != "malformed"}
    summary["malformed_lines"] = {kind: len(lines) for kind, lines in manifest.malformed.items()}
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
