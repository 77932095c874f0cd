"""Built-in synthetic playlists with learnable structure, the default source.

Tracks belong to artists, artists to genres; popularity is power-law (Zipf) both across genres and
within each genre. A playlist picks a genre (and sometimes a second one), a length from a
log-normal, then walks: mostly to one of the current track's few "successors" (same genre,
popularity-weighted, fixed per track), sometimes to a popular track of its genre, rarely to
anything. Co-occurrence and order are therefore informative, so embeddings and sequential rules
can beat popularity. A small share of rows is dirty the way real exports are (padded names, blank
artists, immediate repeats) so the cleaning steps have work to do. Same seed, same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ml.sources.canonical import CanonicalWriter, IngestReport

GENRES = [
    "indie", "techno", "hiphop", "jazz", "metal", "folk", "classical", "reggae",
    "soul", "punk", "ambient", "latin", "country", "house", "blues", "kpop",
]  # fmt: skip
MOODS = ["Road Trip", "Chill", "Workout", "Late Night", "Favourites", "Party", "Focus", "Mix"]


@dataclass(frozen=True)
class SyntheticSpec:
    playlists: int = 5_000
    seed: int = 42
    tracks_per_playlist: float = 20.0  # median length
    successors: int = 4
    p_successor: float = 0.65
    p_genre: float = 0.28  # otherwise: anything, by global popularity
    dirty_fraction: float = 0.01

    @property
    def n_tracks(self) -> int:
        # Catalog grows sub-linearly with the number of playlists, as in real collections.
        return int(max(300, 40 * self.playlists**0.75))


def zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities proportional to 1 / rank**exponent, ranks shuffled over the n items."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def draw_from_cdf(cdf: np.ndarray, u):
    """Inverse-CDF sampling: index of each uniform ``u`` in an unnormalised cumulative sum."""
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)


class Catalog:
    """Tracks with genre, artist, Zipf popularity and fixed successors (of the same genre,
    popularity-weighted), held as arrays; sampling by inverse CDF."""

    def __init__(
        self,
        n: int,
        successors: int,
        rng: np.random.Generator,
        *,
        popularity_exponent: float = 1.0,
        tracks_per_artist: int = 8,
    ):
        self.size = n
        self.genre_of = rng.integers(0, len(GENRES), size=n).astype(np.int8)
        self.genre_cdf = np.cumsum(zipf_weights(len(GENRES), 0.8, rng))
        popularity = zipf_weights(n, popularity_exponent, rng)
        self.global_cdf = np.cumsum(popularity)
        self.by_genre = [
            np.flatnonzero(self.genre_of == g).astype(np.int32) for g in range(len(GENRES))
        ]
        self.genre_track_cdf = [np.cumsum(popularity[t]) for t in self.by_genre]
        self.artist_of = np.empty(n, dtype=np.int32)
        self.successors = np.empty((n, successors), dtype=np.int32)
        for g, tracks in enumerate(self.by_genre):
            artists = max(1, len(tracks) // tracks_per_artist)
            self.artist_of[tracks] = rng.integers(0, artists, size=len(tracks))
            picks = rng.random((len(tracks), successors))
            self.successors[tracks] = tracks[draw_from_cdf(self.genre_track_cdf[g], picks)]

    @cached_property
    def names(self) -> list[tuple[str, str]]:
        """(artist, title) of every track; built on first use (a Python loop over tracks)."""
        return [
            (f"{GENRES[self.genre_of[t]].title()} Artist {self.artist_of[t]:03d}", f"Song {t:05d}")
            for t in range(self.size)
        ]

    def genre(self, rng: np.random.Generator) -> int:
        return int(draw_from_cdf(self.genre_cdf, rng.random()))

    def track_of_genre(self, g: int, rng: np.random.Generator) -> int:
        return int(self.by_genre[g][draw_from_cdf(self.genre_track_cdf[g], rng.random())])

    def any_track(self, rng: np.random.Generator) -> int:
        return int(draw_from_cdf(self.global_cdf, rng.random()))


def _next_track(
    catalog: Catalog,
    spec: SyntheticSpec,
    current: int,
    genres: list[int],
    used: set[int],
    rng: np.random.Generator,
) -> int:
    """A successor, a track of the playlist's genres, or anything; rarely one already used."""
    candidate = current
    for _ in range(4):
        step = rng.random()
        if step < spec.p_successor:
            candidate = int(catalog.successors[current, rng.integers(0, spec.successors)])
        elif step < spec.p_successor + spec.p_genre:
            candidate = catalog.track_of_genre(genres[int(rng.integers(0, len(genres)))], rng)
        else:
            candidate = catalog.any_track(rng)
        if candidate not in used:
            break
    return candidate


def generate_rows(spec: SyntheticSpec):
    """Yields lists of (user_id, artist, track, playlist) rows, one list per 1,000 playlists."""
    rng = np.random.default_rng(spec.seed)
    catalog = Catalog(spec.n_tracks, spec.successors, rng)
    n_users = max(1, spec.playlists // 3)
    rows: list[tuple[str, str | None, str, str]] = []
    for p in range(spec.playlists):
        user = f"user{rng.integers(0, n_users):06d}"
        name = f"{MOODS[p % len(MOODS)]} {p:07d}"
        genres = [catalog.genre(rng)]
        if rng.random() < 0.3:
            genres.append(catalog.genre(rng))
        length = int(np.clip(rng.lognormal(np.log(spec.tracks_per_playlist), 0.6), 1, 250))
        current = catalog.track_of_genre(genres[0], rng)
        used = {current}
        for _ in range(length):
            artist, title = catalog.names[current]
            roll = rng.random()
            if roll < spec.dirty_fraction / 3:
                artist = "  " if rng.random() < 0.5 else None
            elif roll < spec.dirty_fraction * 2 / 3:
                artist, title = f" {artist}  ", f"{title} "
            elif roll < spec.dirty_fraction:
                rows.append((user, artist, title, name))  # an accidental repeat
            rows.append((user, artist, title, name))
            current = _next_track(catalog, spec, current, genres, used, rng)
            used.add(current)
        if (p + 1) % 1_000 == 0:
            yield rows
            rows = []
    yield rows


def write_synthetic(spec: SyntheticSpec, writer: CanonicalWriter, report: IngestReport) -> None:
    for rows in generate_rows(spec):
        writer.write_rows(rows)
    report.files.append(f"synthetic(playlists={spec.playlists}, seed={spec.seed})")
