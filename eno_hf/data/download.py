"""Download audio listed by URL in metadata into the data root: the design card's first stage.

Never called at import time or by the default main job: only ``eno download`` / the ``download``
flow fetch anything. Each URL becomes ``{dest}/{recording_id}{suffix}``; what was fetched is
recorded in ``{dest}/manifest.json`` (url, path, bytes, sha256, content type), what failed in
``{dest}/download_report.json`` with a reason code, so every listed URL ends up in one of the two.

Behaviour (HTTP via ``httpx``):
- concurrency: at most ``concurrency`` downloads at once (a thread pool; a Prefect flow can run
  the same function per URL as tasks with its own concurrency limit);
- retries with exponential backoff (``backoff_s * 2**attempt``) on timeouts, connection errors,
  truncated bodies and HTTP 429/5xx; 4xx other than 429 is final (``http_error``);
- resumable: bytes land in ``{file}.part``; a retry (or a later run) asks for the rest with
  ``Range: bytes=N-`` and appends when the server answers 206, restarts when it answers 200;
- checks: ``Content-Type`` must be audio (or a configured allow-list: ``wrong_content_type``),
  size at most ``max_bytes`` (``too_large``), non-empty (``empty``), and the final byte count
  must match ``Content-Length`` (``truncated`` after the last retry);
- idempotent: a file whose manifest entry (size + sha256) still matches is not fetched again.

Example::

    >>> from eno_hf.data.download import DownloadItem, download_all
    >>> items = [DownloadItem("MT0000011975", "http://127.0.0.1:8765/a.mp3")]
    >>> result = download_all(items, "eno-data/downloads/4q")   # doctest: +SKIP
    >>> result.downloaded[0]["sha256"]                          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from eno_hf.config import Settings
from eno_hf.utils.io import atomic_write_json, file_sha256
from eno_hf.utils.progress import track

log = logging.getLogger(__name__)

__all__ = ["DownloadItem", "DownloadResult", "download_all", "download_one", "items_from_csv"]

AUDIO_SUFFIXES = {".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aiff", ".aif", ".mid", ".midi"}
_CT_SUFFIX = {"audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav",
              "audio/wave": ".wav", "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg",
              "audio/opus": ".opus", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/aiff": ".aiff",
              "audio/midi": ".mid", "audio/x-midi": ".mid"}


@dataclass(frozen=True)
class DownloadItem:
    """One URL to fetch.

    Attributes:
        recording_id: becomes the file stem (``/`` and other unsafe characters replaced by ``_``).
        url: ``http(s)://`` URL.
    """

    recording_id: str
    url: str


@dataclass
class DownloadResult:
    """Outcome of ``download_all``: every item is in ``downloaded`` or ``failed``.

    Attributes:
        downloaded: manifest entries ``{recording_id, url, path, bytes, sha256, content_type,
            reused}`` (``reused`` = already present and verified, nothing fetched).
        failed: ``{recording_id, url, reason, detail, attempts}``; reasons: ``bad_url``,
            ``http_error``, ``timeout``, ``connection_error``, ``truncated``, ``too_large``,
            ``wrong_content_type``, ``empty``, ``io_error``.
        manifest_path, report_path: the JSON files written under the destination.
    """

    downloaded: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    manifest_path: Path | None = None
    report_path: Path | None = None


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.retryable = reason, detail, retryable


def _safe_stem(recording_id: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", recording_id).strip("._")
    if not stem:
        raise _Failure("bad_url", f"recording id {recording_id!r} gives no usable file name", False)
    return stem[:200]


def _suffix(url: str, content_type: str | None) -> str:
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct in _CT_SUFFIX:
        return _CT_SUFFIX[ct]
    suffix = Path(urlparse(url).path).suffix.lower()
    return suffix if suffix in AUDIO_SUFFIXES else ".bin"


def items_from_csv(path: str | Path, id_column: str, url_column: str) -> tuple[list[DownloadItem], list[dict]]:
    """``DownloadItem``s from a CSV/TSV metadata file (e.g. the 4Q CSV's ``Song`` + ``SampleURL``).

    Returns:
        ``(items, rejected)``: rows without an id or URL are ``rejected`` entries
        ``{row, reason: "bad_metadata", detail}`` (line numbers are 1-based, header = line 1).

    Raises:
        ValueError: the file lacks ``id_column`` or ``url_column`` (message names file and columns).
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        delim = "\t" if sample.count("\t") > sample.count(",") else ","
        reader = csv.DictReader(fh, delimiter=delim)
        cols = reader.fieldnames or []
        missing = [c for c in (id_column, url_column) if c not in cols]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {cols})")
        items, rejected = [], []
        for line, row in enumerate(reader, start=2):
            rid, url = (row.get(id_column) or "").strip(), (row.get(url_column) or "").strip()
            if not rid or not url:
                rejected.append({"row": line, "reason": "bad_metadata",
                                 "detail": f"{path}:{line}: empty {id_column if not rid else url_column}"})
                continue
            items.append(DownloadItem(rid, url))
    return items, rejected


def download_one(item: DownloadItem, dest: str | Path, *, client=None, retries: int = 3,
                 backoff_s: float = 0.5, timeout_s: float = 30.0, max_bytes: int = 200 * 2**20,
                 content_types: tuple[str, ...] = ("audio/", "application/octet-stream"),
                 known: dict[str, Any] | None = None, sleep: Callable[[float], None] = time.sleep
                 ) -> dict[str, Any]:
    """Fetch one URL into ``dest`` (resumable, retried). Returns its manifest entry.

    Args:
        item: id + URL.
        dest: destination folder (created).
        client: an ``httpx.Client`` to reuse (one is made when None).
        retries: further attempts after the first on retryable failures.
        backoff_s: first retry delay in seconds, doubled each attempt.
        timeout_s: connect/read timeout per attempt, seconds.
        max_bytes: refuse bodies larger than this (``too_large``).
        content_types: accepted ``Content-Type`` prefixes.
        known: the previous manifest entry of this id; when its file still has the recorded size and
            sha256, nothing is fetched (``reused: True``).
        sleep: the backoff sleep (tests pass a no-op).

    Raises:
        _Failure: internal; ``download_all`` turns it into a ``failed`` entry.
    """
    import httpx

    parsed = urlparse(item.url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _Failure("bad_url", f"{item.url!r} is not an http(s) URL", False)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stem = _safe_stem(item.recording_id)
    if known and known.get("url") == item.url:
        p = dest / Path(known["path"]).name
        if p.is_file() and p.stat().st_size == known.get("bytes") and file_sha256(p) == known.get("sha256"):
            return {**known, "reused": True}
    part = dest / f"{stem}.part"
    own_client = client is None
    client = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    attempts = 0
    try:
        while True:
            attempts += 1
            try:
                total, ctype = _fetch(client, item.url, part, max_bytes, content_types, timeout_s)
                break
            except _Failure as exc:
                exc.attempts = attempts  # type: ignore[attr-defined]
                if not exc.retryable or attempts > retries:
                    if not exc.retryable:
                        part.unlink(missing_ok=True)
                    raise
                log.info("%s: %s (attempt %d/%d), retrying", item.url, exc, attempts, retries + 1)
                sleep(backoff_s * 2 ** (attempts - 1))
    finally:
        if own_client:
            client.close()
    final = dest / f"{stem}{_suffix(item.url, ctype)}"
    os.replace(part, final)
    return {"recording_id": item.recording_id, "url": item.url, "path": str(final), "bytes": total,
            "sha256": file_sha256(final), "content_type": ctype, "attempts": attempts, "reused": False}


def _fetch(client, url: str, part: Path, max_bytes: int, content_types: tuple[str, ...],
           timeout_s: float) -> tuple[int, str]:
    """One attempt: GET (with Range when ``part`` has bytes), append/restart, verify length."""
    import httpx

    have = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", url, headers=headers, timeout=timeout_s) as resp:
            if resp.status_code == 416 and have:  # we already hold everything
                part.unlink(missing_ok=True)
                raise _Failure("truncated", "server refused the range of a stale partial file", True)
            if resp.status_code == 429 or resp.status_code >= 500:
                raise _Failure("http_error", f"HTTP {resp.status_code}", True)
            if resp.status_code >= 400:
                raise _Failure("http_error", f"HTTP {resp.status_code}", False)
            ctype = resp.headers.get("content-type", "")
            if not any(ctype.lower().startswith(c) for c in content_types):
                raise _Failure("wrong_content_type", f"Content-Type {ctype!r} is not audio", False)
            resumed = resp.status_code == 206 and have > 0
            length = resp.headers.get("content-length")
            expected = (int(length) + (have if resumed else 0)) if length and length.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise _Failure("too_large", f"{expected} bytes > max_bytes={max_bytes}", False)
            n = have if resumed else 0
            with open(part, "ab" if resumed else "wb") as fh:
                for chunk in resp.iter_bytes(1 << 16):
                    n += len(chunk)
                    if n > max_bytes:
                        raise _Failure("too_large", f"more than max_bytes={max_bytes} bytes", False)
                    fh.write(chunk)
    except httpx.TimeoutException as exc:
        raise _Failure("timeout", f"{type(exc).__name__} after {timeout_s} s", True) from exc
    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
        raise _Failure("truncated", f"body cut short ({type(exc).__name__})", True) from exc
    except httpx.TransportError as exc:
        raise _Failure("connection_error", f"{type(exc).__name__}: {exc}", True) from exc
    except OSError as exc:
        raise _Failure("io_error", f"{type(exc).__name__}: {exc}", False) from exc
    if n == 0:
        part.unlink(missing_ok=True)
        raise _Failure("empty", "the server sent no bytes", False)
    if expected is not None and n != expected:
        raise _Failure("truncated", f"got {n} of {expected} bytes", True)
    return n, ctype


def download_all(items: Iterable[DownloadItem], dest: str | Path, *, concurrency: int = 4,
                 retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 30.0,
                 max_bytes: int = 200 * 2**20,
                 content_types: tuple[str, ...] = ("audio/", "application/octet-stream"),
                 progress: bool = False, sleep: Callable[[float], None] = time.sleep) -> DownloadResult:
    """Download every item into ``dest`` with at most ``concurrency`` at once.

    Writes ``{dest}/manifest.json`` (``{recording_id: entry}``, merged with earlier runs) and
    ``{dest}/download_report.json`` (``{"downloaded": n, "reused": n, "failed": [...]}``).
    Duplicate ids keep the first URL; later ones are ``failed`` with reason ``duplicate_id``.

    Returns:
        ``DownloadResult``; every item is in ``downloaded`` or ``failed``.
    """
    import httpx

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    result = DownloadResult(manifest_path=manifest_path, report_path=dest / "download_report.json")
    seen: set[str] = set()
    todo: list[DownloadItem] = []
    for it in items:
        if it.recording_id in seen:
            result.failed.append({"recording_id": it.recording_id, "url": it.url, "reason": "duplicate_id",
                                  "detail": "id listed more than once; the first URL was kept", "attempts": 0})
            continue
        seen.add(it.recording_id)
        todo.append(it)

    limits = httpx.Limits(max_connections=max(1, concurrency))
    with httpx.Client(timeout=timeout_s, follow_redirects=True, limits=limits) as client:
        def work(it: DownloadItem) -> tuple[DownloadItem, dict | None, dict | None]:
            try:
                entry = download_one(it, dest, client=client, retries=retries, backoff_s=backoff_s,
                                     timeout_s=timeout_s, max_bytes=max_bytes, content_types=content_types,
                                     known=manifest.get(it.recording_id), sleep=sleep)
                return it, entry, None
            except _Failure as exc:
                return it, None, {"recording_id": it.recording_id, "url": it.url, "reason": exc.reason,
                                  "detail": exc.detail, "attempts": getattr(exc, "attempts", 1)}

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            outcomes = pool.map(work, todo)
            if progress:
                outcomes = track(outcomes, total=len(todo), description="download", unit="file")
            for it, entry, failure in outcomes:
                if entry is not None:
                    manifest[it.recording_id] = {k: v for k, v in entry.items() if k != "reused"}
                    result.downloaded.append(entry)
                else:
                    result.failed.append(failure)
    atomic_write_json(manifest_path, manifest)
    atomic_write_json(result.report_path, {
        "downloaded": sum(not e["reused"] for e in result.downloaded),
        "reused": sum(bool(e["reused"]) for e in result.downloaded),
        "failed": result.failed})
    return result


def download_dataset_audio(settings: Settings, progress: bool = True) -> DownloadResult:
    """``download_all`` for the URLs of ``settings.dataset.source.metadata`` (CSV/TSV).

    Uses ``dataset.source.id_column`` and ``dataset.download.url_column``; files go to
    ``dataset.download.dest`` or ``{paths.data_root}/downloads/{dataset.name}``. Metadata rows
    without an id or URL are added to ``failed`` with reason ``bad_metadata``.

    Raises:
        ValueError: no metadata file, id column or URL column configured / present.
    """
    ds = settings.dataset
    cfg = ds.download
    if ds.source.metadata is None or not ds.source.id_column or not cfg.url_column:
        raise ValueError("eno download needs dataset.source.metadata, dataset.source.id_column and "
                         "dataset.download.url_column (e.g. --set dataset.download.url_column=SampleURL)")
    items, rejected = items_from_csv(ds.source.metadata, ds.source.id_column, cfg.url_column)
    dest = cfg.dest or Path(settings.paths.data_root) / "downloads" / ds.name
    res = download_all(items, dest, concurrency=cfg.concurrency, retries=cfg.retries,
                       backoff_s=cfg.backoff_s, timeout_s=cfg.timeout_s, max_bytes=cfg.max_bytes,
                       content_types=tuple(cfg.content_types), progress=progress)
    res.failed.extend({"recording_id": None, "url": None, "reason": r["reason"], "detail": r["detail"],
                       "attempts": 0} for r in rejected)
    if rejected:
        report = json.loads(res.report_path.read_text())
        report["failed"] = res.failed
        atomic_write_json(res.report_path, report)
    return res
