"""Synthetic music collections at any size, for the scale benchmark and tests.

Two generators:

- ``make_dump(path, n_albums, seed=...)``: a RYM-style metadata dump (the schema of
  ``eno_hf.data.sources.json_dump``, or the same fields as a one-row-per-track CSV for
  ``eno_hf.data.sources.csv``), written album by album (a 3M-track dump is never held in memory).
  Labels are drawn Zipf-like (weight of the label of rank ``k`` ∝ ``1 / k``, as tag frequencies in
  user-tagged collections are), artists have about ``albums_per_artist`` albums (Poisson), albums
  have about ``tracks_per_album`` tracks (uniform in ``[t/2, 3t/2]``). Every track's audio is one
  file of a small pool of real clips (``path_template: "{pool_file}"``), so ingest sees a real
  ``audio_root`` without 3M files. ``broken_fraction`` of the albums are broken in assorted ways;
  the returned ``DumpInfo`` says which rows the adapter must reject and which ids it must lose.
- ``make_audio(out_dir, n, seed=...)``: ``n`` distinct short recordings (10 s by default) (excerpts of the 4Q clips
  and the long-form tracks under ``$ENO_SHARED_DIR/data``, each at its own offset and gain; 16-bit
  FLAC, mono, 16 kHz) plus a metadata CSV in the 4Q CSV's column names, so ``eno build --config
  small`` builds it with four ``--set`` overrides (``AudioSet.overrides``).

Nothing here writes into the repository: callers pass folders under ``/tmp`` (or pytest's
``tmp_path``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ENO_SHARED_DIR", PROJECT_ROOT.parent / "shared")) / "data"
FOURQ_DIR = SHARED_DATA / "4q-dev"
LONG_FORM_DIR = SHARED_DATA / "long-form"

JSON_BREAKS = ("no_tracks", "tracks_not_list", "track_not_object", "bad_rating", "no_track_id",
               "bad_album_rating")
"""Ways ``make_dump(fmt="json")`` breaks an album: album without ``tracks``; ``tracks`` a string; one
track a string; one track's ``rating`` not a number; one track without ``track_id``; the album's
``rating`` not a number (every track without a rating of its own is rejected)."""

CSV_BREAKS = ("bad_rating", "no_track_id")
"""Ways ``make_dump(fmt="csv")`` breaks an album: one row's rating not a number; one row's id empty."""


@dataclass
class DumpInfo:
    """What ``make_dump`` wrote, and what ingest must make of it.

    Attributes:
        path: the dump file.
        fmt: ``"json"`` or ``"csv"``.
        audio_root: folder the pool files are relative to.
        n_albums: albums written (broken ones included).
        n_tracks: track entries written (broken ones included; a ``no_tracks`` album counts its
            tracks that were dropped with the list too).
        n_valid: tracks ingest must accept.
        n_groups: distinct artists among the valid tracks.
        expected_rejections: one dict per item ingest must reject: ``{"album_id", "kind",
            "where"}`` (``where`` = ``albums[i]`` / ``albums[i].tracks[j]``, or ``line N`` for CSV).
        lost_ids: ids of tracks that exist in the collection but must not come out of ingest.
        descriptor_vocab, genre_vocab: the label vocabularies drawn from.
    """

    path: Path
    fmt: str
    audio_root: Path
    n_albums: int
    n_tracks: int
    n_valid: int
    n_groups: int
    expected_rejections: list[dict[str, Any]] = field(default_factory=list)
    lost_ids: list[str] = field(default_factory=list)
    descriptor_vocab: list[str] = field(default_factory=list)
    genre_vocab: list[str] = field(default_factory=list)

    def source_overrides(self, group_column: str = "artist") -> list[str]:
        """``--set`` overrides (``dataset.source.*``) that ingest this dump with eno's adapters.

        JSON: the adapter's defaults (``descriptors``/``genres`` multi-label, ``rating`` numeric);
        CSV: the same tasks mapped explicitly. Group: ``artist`` (an artist never crosses splits).
        """
        common = [f"dataset.source.metadata={self.path}", f"dataset.source.audio_root={self.audio_root}",
                  "dataset.source.path_template='{pool_file}'", "dataset.source.stem_lookup=false",
                  f"dataset.source.group_column={group_column}"]
        if self.fmt == "json":
            return ["dataset.source.kind=json_dump", *common]
        return ["dataset.source.kind=csv", "dataset.source.id_column=track_id", *common,
                "dataset.source.multilabel.descriptors.column=descriptors",
                "dataset.source.multilabel.descriptors.separator=;",
                "dataset.source.multilabel.genres.column=genres",
                "dataset.source.multilabel.genres.separator=;",
                "dataset.source.numeric.rating=rating"]


def make_pool(audio_root: str | Path, n: int = 20, source_dir: str | Path = FOURQ_DIR) -> list[str]:
    """Copy ``n`` real clips (sorted by name, taken round-robin over the quadrant folders) into
    ``{audio_root}/pool/`` once; later calls reuse them.

    Returns:
        The clips' paths relative to ``audio_root`` (``pool/Q1-MT0000040632.mp3``, ...).

    Raises:
        FileNotFoundError: ``source_dir`` holds fewer than ``n`` mp3 files.
    """
    src = Path(source_dir)
    by_folder = [sorted(d.glob("*.mp3")) for d in sorted(p for p in src.iterdir() if p.is_dir())] \
        if src.is_dir() else []
    picked: list[Path] = []
    for i in range(max((len(f) for f in by_folder), default=0)):
        for files in by_folder:
            if i < len(files) and len(picked) < n:
                picked.append(files[i])
    if len(picked) < n:
        raise FileNotFoundError(f"{src}: {len(picked)} mp3 clips, {n} wanted")
    pool_dir = Path(audio_root) / "pool"
    pool_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for f in picked:
        dest = pool_dir / f"{f.parent.name}-{f.name}"
        if not dest.is_file() or dest.stat().st_size != f.stat().st_size:
            shutil.copyfile(f, dest)
        out.append(dest.relative_to(audio_root).as_posix())
    return out


def _zipf_cdf(n: int, exponent: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return np.cumsum(w) / w.sum()


def _draw(rng: np.random.Generator, cdf: np.ndarray, k: int) -> list[int]:
    """``k`` distinct label indices drawn by the Zipf ``cdf`` (fewer if the vocabulary is smaller)."""
    out: list[int] = []
    k = min(k, len(cdf))
    while len(out) < k:
        for j in np.searchsorted(cdf, rng.random(k - len(out) + 2)):
            j = int(min(j, len(cdf) - 1))
            if j not in out and len(out) < k:
                out.append(j)
    return out


def make_dump(path: str | Path, n_albums: int, *, seed: int, pool: list[str], audio_root: str | Path,
              tracks_per_album: int = 10, n_descriptors: int = 1200, n_genres: int = 300,
              labels_per_album: float = 8.0, albums_per_artist: float = 3.0,
              broken_fraction: float = 0.0, fmt: str = "json") -> DumpInfo:
    """Write a RYM-style dump of ``n_albums`` albums to ``path``, streamed album by album.

    Per album: an artist (``n_albums / albums_per_artist`` artists, albums dealt at random, so
    Poisson-many per artist), ``round(labels_per_album * 3/4)`` descriptors and the rest genres on
    average (Poisson counts, at least one each; labels drawn Zipf-like from ``desc0000``.. and
    ``genre000``..), an album ``rating`` in [0.5, 5], ``tracks_per_album/2 .. 3*tracks_per_album/2``
    tracks. Per track: ``track_id`` ``{album_id}-{j:02d}``, ``title``, ``pool_file`` (a file of
    ``pool``); 30 % carry descriptors of their own (a subset of the album's, sometimes one more),
    10 % a rating of their own. In JSON, 20 % of the albums give ``genres`` as one ``"a; b"`` string.

    Args:
        path: output file (``.json`` / ``.csv``); parent folders are created.
        n_albums: albums to write (>= 1).
        seed: everything is a function of the arguments and this seed.
        pool: audio paths relative to ``audio_root`` (``make_pool``).
        audio_root: the folder ``pool`` is relative to (recorded in the ``DumpInfo``).
        broken_fraction: share of albums broken in one of ``JSON_BREAKS`` / ``CSV_BREAKS``
            (cycled through in order, so every kind appears once there are enough broken albums).
        fmt: ``"json"`` (``{"albums": [...]}``) or ``"csv"`` (one row per track, ``;``-joined tags).

    Returns:
        ``DumpInfo`` (counts, expected rejections, lost ids, vocabularies).

    Raises:
        ValueError: ``n_albums < 1``, empty ``pool``, unknown ``fmt``.
    """
    if n_albums < 1 or not pool:
        raise ValueError("n_albums must be >= 1 and pool non-empty")
    if fmt not in ("json", "csv"):
        raise ValueError(f"fmt must be 'json' or 'csv', got {fmt!r}")
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    desc_vocab = [f"desc{i:04d}" for i in range(n_descriptors)]
    genre_vocab = [f"genre{i:03d}" for i in range(n_genres)]
    desc_cdf, genre_cdf = _zipf_cdf(n_descriptors), _zipf_cdf(n_genres)
    n_artists = max(1, round(n_albums / albums_per_artist))
    mean_desc = labels_per_album * 0.75
    mean_genre = labels_per_album - mean_desc
    breaks = JSON_BREAKS if fmt == "json" else CSV_BREAKS
    broken = set(rng.choice(n_albums, size=int(round(broken_fraction * n_albums)), replace=False).tolist()) \
        if broken_fraction > 0 else set()
    info = DumpInfo(path=path, fmt=fmt, audio_root=Path(audio_root), n_albums=n_albums, n_tracks=0,
                    n_valid=0, n_groups=0, descriptor_vocab=desc_vocab, genre_vocab=genre_vocab)
    artists_valid: set[int] = set()
    n_broken = 0
    lo, hi = max(1, tracks_per_album // 2), max(1, (3 * tracks_per_album) // 2)
    line = 1  # CSV: header is line 1
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = None
        if fmt == "json":
            fh.write('{"albums": [\n')
        else:
            writer = csv.writer(fh)
            writer.writerow(["track_id", "album_id", "artist", "album_title", "title", "descriptors",
                             "genres", "rating", "pool_file"])
        for i in range(n_albums):
            artist_ix = int(rng.integers(n_artists))
            album_id = f"al{i:07d}"
            desc = [desc_vocab[j] for j in _draw(rng, desc_cdf, max(1, int(rng.poisson(mean_desc))))]
            genres = [genre_vocab[j] for j in _draw(rng, genre_cdf, max(1, int(rng.poisson(mean_genre))))]
            rating = round(float(rng.uniform(0.5, 5.0)), 2)
            n_tracks = int(rng.integers(lo, hi + 1))
            tracks: list[Any] = []
            for j in range(n_tracks):
                t: dict[str, Any] = {"track_id": f"{album_id}-{j + 1:02d}", "title": f"Track {j + 1}",
                                     "pool_file": pool[int(rng.integers(len(pool)))]}
                u = rng.random()
                if u < 0.3:
                    own = [d for d in desc if rng.random() < 0.6] or desc[:1]
                    if rng.random() < 0.3:
                        own.append(desc_vocab[_draw(rng, desc_cdf, 1)[0]])
                    t["descriptors"] = list(dict.fromkeys(own))
                if rng.random() < 0.1:
                    t["rating"] = round(float(rng.uniform(0.5, 5.0)), 2)
                tracks.append(t)
            album: dict[str, Any] = {"album_id": album_id, "artist": f"artist{artist_ix:06d}",
                                     "title": f"Album {i}", "descriptors": desc,
                                     "genres": "; ".join(genres) if (fmt == "json" and rng.random() < 0.2)
                                     else genres,
                                     "rating": rating, "tracks": tracks}
            lost: list[int] = []  # track indices ingest must not accept
            kind = None
            if i in broken:
                kind = breaks[n_broken % len(breaks)]
                n_broken += 1
                j = int(rng.integers(n_tracks))
                if kind in ("no_tracks", "tracks_not_list"):
                    info.expected_rejections.append({"album_id": album_id, "kind": kind,
                                                     "where": f"albums[{i}]"})
                    lost = list(range(n_tracks))
                    if kind == "no_tracks":
                        del album["tracks"]
                    else:
                        album["tracks"] = "see the liner notes"
                elif kind == "bad_album_rating":
                    album["rating"] = "n/a"
                    lost = [k for k, t in enumerate(tracks) if "rating" not in t]
                    info.expected_rejections += [{"album_id": album_id, "kind": kind,
                                                  "where": f"albums[{i}].tracks[{k}]"} for k in lost]
                else:
                    lost = [j]
                    where = f"albums[{i}].tracks[{j}]"
                    if fmt == "csv":
                        where = f"line {line + 1 + j}"
                    info.expected_rejections.append({"album_id": album_id, "kind": kind, "where": where})
                    if kind == "track_not_object":
                        tracks[j] = f"{album_id}-{j + 1:02d}"
                    elif kind == "bad_rating":
                        tracks[j]["rating"] = "four stars"
                    elif kind == "no_track_id":
                        tracks[j]["track_id"] = "" if fmt == "csv" else None
                        if fmt == "json":
                            del tracks[j]["track_id"]
            info.n_tracks += n_tracks
            info.n_valid += n_tracks - len(lost)
            info.lost_ids += [f"{album_id}-{k + 1:02d}" for k in lost]
            if len(lost) < n_tracks:
                artists_valid.add(artist_ix)
            if fmt == "json":
                fh.write(("" if i == 0 else ",\n") + json.dumps(album, separators=(",", ":")))
            else:
                assert writer is not None
                for t in tracks:
                    writer.writerow([t["track_id"], album_id, album["artist"], album["title"], t["title"],
                                     "; ".join(t.get("descriptors") or desc), "; ".join(genres),
                                     t.get("rating", album["rating"]), t["pool_file"]])
                line += len(tracks)
        if fmt == "json":
            fh.write("\n]}\n")
    info.n_groups = len(artists_valid)
    return info


# ----------------------------------------------------------------------------- audio
@dataclass
class AudioSet:
    """What ``make_audio`` wrote: ``n`` FLAC files under ``audio_root`` and ``metadata`` (CSV)."""

    audio_root: Path
    metadata: Path
    n: int
    n_sources: int

    def overrides(self) -> list[str]:
        """``--set`` overrides for ``--config small`` (the 4Q source mapping; paths from the CSV)."""
        return [f"dataset.source.metadata={self.metadata}", f"dataset.source.audio_root={self.audio_root}",
                "dataset.source.path_column=path", "dataset.name=scale-audio"]


def _fourq_labels() -> dict[str, dict[str, str]]:
    meta = FOURQ_DIR / "panda_dataset_taffc_metadata.csv"
    with open(meta, encoding="utf-8-sig", newline="") as fh:
        return {r["Song"]: r for r in csv.DictReader(fh)}


def audio_sources() -> list[Path]:
    """The real recordings excerpts are cut from: the 4Q mp3 clips, then the long-form tracks."""
    clips = sorted(FOURQ_DIR.glob("Q*/*.mp3"))
    longs = sorted(p for p in LONG_FORM_DIR.iterdir() if p.suffix in (".opus", ".ogg", ".mp3", ".flac")) \
        if LONG_FORM_DIR.is_dir() else []
    return clips + longs


def make_audio(out_dir: str | Path, n: int, *, seed: int, excerpt_s: float = 10.0,
               sample_rate: int = 16000) -> AudioSet:
    """Write ``n`` distinct excerpts of real music as 16-bit mono FLAC + ``metadata.csv``.

    Excerpts are dealt over ``audio_sources()`` in proportion to each source's length; each
    source is decoded once (``eno_hf.audio.io.load_audio``, resampled to ``sample_rate``) and its
    excerpts cut at distinct random offsets with a random gain in [-9, 0] dB, so no two files are
    byte-identical (eno rejects those as ``duplicate_content``). Near-silent excerpts (RMS below
    -50 dBFS) are skipped for another offset. Already written files (same name) are kept, so a
    second call with the same arguments only checks them.

    The CSV uses the 4Q CSV's columns (``Song``, ``Artist`` = the source clip, the split group,
    ``Quadrant``, ``MoodsStrSplit``, ``GenresStr`` from the source clip's 4Q labels; long-form
    sources have none) plus ``path`` (relative to ``{out_dir}/audio``).

    Args:
        out_dir: folder for ``audio/`` and ``metadata.csv``.
        n: number of recordings (>= 1).
        seed: offsets and gains are a function of ``n``, the seed and the source list.
        excerpt_s: excerpt length in seconds (10 s: one segment under ``small``'s 30-s segments
            with ``min_last_ratio`` 0.3, which rejects files under 9 s as ``too_short``).
        sample_rate: Hz.

    Returns:
        ``AudioSet``.

    Raises:
        FileNotFoundError: no source recordings under ``$ENO_SHARED_DIR/data``.
    """
    import soundfile as sf

    from eno_hf.audio.io import audio_info, load_audio

    out = Path(out_dir)
    audio_root = out / "audio"
    sources = audio_sources()
    if not sources:
        raise FileNotFoundError(f"no source recordings under {FOURQ_DIR} / {LONG_FORM_DIR}")
    labels = _fourq_labels()
    durations = np.array([audio_info(p).duration_s for p in sources], dtype=np.float64)
    usable = np.maximum(durations - excerpt_s, 0.0)
    share = usable / usable.sum() * n
    counts = np.floor(share).astype(int)
    for k in np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    length = int(round(excerpt_s * sample_rate))
    rows = []
    idx = 0
    for si, (src, count) in enumerate(zip(sources, counts)):
        if count == 0:
            continue
        rng = np.random.default_rng([seed, si])  # per source: a resumed run draws the same offsets
        span = max(1, int((durations[si] - excerpt_s) * 100))  # offsets in 10-ms steps
        offsets = rng.choice(span, size=count, replace=bool(count > span))
        gains_db = rng.uniform(-9.0, 0.0, size=count)
        samples = None
        lab = labels.get(src.stem, {})
        for k in range(count):
            name = f"x{idx:06d}"
            rel = f"{idx // 1000:03d}/{name}.flac"
            dest = audio_root / rel
            if not dest.is_file():
                if samples is None:
                    samples, _ = load_audio(src, sample_rate=sample_rate)
                start = int(offsets[k]) * sample_rate // 100
                for _ in range(20):  # near-silent or short excerpt: another offset
                    x = samples[start:start + length]
                    if len(x) == length and np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 10 ** (-50 / 20):
                        break
                    start = int(rng.integers(0, max(1, len(samples) - length)))
                y = np.clip(x * 10 ** (gains_db[k] / 20), -1.0, 1.0)
                y[-1] = ((idx % 30000) + 1) / 32768.0  # a unique last sample: distinct bytes whatever the offsets
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp = dest.with_name("." + dest.name + ".part")  # a dot-file: never walked as an input
                sf.write(tmp, y, sample_rate, subtype="PCM_16", format="FLAC")
                os.replace(tmp, dest)
            rows.append({"Song": name, "Artist": src.stem, "Title": f"{src.stem} excerpt {k}",
                         "Quadrant": lab.get("Quadrant", ""), "MoodsStrSplit": lab.get("MoodsStrSplit", ""),
                         "GenresStr": lab.get("GenresStr", ""), "path": rel})
            idx += 1
        del samples
    meta = out / "metadata.csv"
    tmp = meta.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, meta)
    return AudioSet(audio_root=audio_root, metadata=meta, n=len(rows), n_sources=int((counts > 0).sum()))


def log_slope(x0: float, y0: float, x1: float, y1: float) -> float | None:
    """Growth exponent between two sizes: ``log(y1/y0) / log(x1/x0)`` (None when undefined)."""
    if min(x0, y0, x1, y1) <= 0 or x0 == x1:
        return None
    return math.log(y1 / y0) / math.log(x1 / x0)
