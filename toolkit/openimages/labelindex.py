"""A columnar cache of an Open Images image-level labels CSV.

The v7 train labels file is ~2.7 GB and ~58M rows: loading it whole with pandas takes
about 9 GB. Instead it is scanned once, in bounded chunks by two worker processes
(``labelbuild``), into flat column files that later runs memory-map:

- ``runs.u64``    ImageID (16 hex digits = 64 bits) of each run of consecutive rows of one
                  image (the official files group rows by image: ~6 rows a run)
- ``run.u32``     per row: its run number, so its ImageID is ``runs[run[row]]``
- ``labels.u16``  LabelName as a code into ``meta.json["labels"]``
- ``conf.u8``     Confidence x 100, rounded (1 -> 100, 0 -> 0; machine scores to 1 %)
- ``images.u64``  the distinct ImageIDs, sorted
- ``counts.i64``  per label code: rows with Confidence == 1 (images verified to show it)

A query ("which images carry label X with Confidence 1") is then a table lookup over
the label codes: well under a second for 58M rows.

``meta.json`` records each column file's size, MD5 and modification time. An index is
used only if every file has its size and, where its modification time changed, its MD5;
a damaged one is rebuilt, with a message. Building holds a lock
(``<cache>/locks/index-<name>.lock``) so that two runs never build one index at once, and
removes the temporary folders of builds that were killed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MlkitError, ParameterError
from ..fsutil import file_md5, locked, remove_partial_folders
from ..progress import SILENT, Reporter
from .labelbuild import FORMAT_VERSION, build_label_index

__all__ = ["LabelIndex", "build_label_index", "hex_array_to_ids", "hex_to_id", "ids_to_hex", "index_dir_for",
           "open_label_index"]


# ---------------------------------------------------------------------------- ImageIDs

def hex_to_id(image_id: str) -> int:
    """ImageID (16 hex digits) -> its uint64 value."""
    if len(image_id) != 16:
        raise ParameterError("image_id", image_id, "must have 16 hex digits, as an Open Images ImageID has", flag="")
    return int(image_id, 16)


def ids_to_hex(ids: Iterable[int] | np.ndarray) -> list[str]:
    return [f"{int(v):016x}" for v in ids]


def hex_array_to_ids(image_ids: Iterable[str]) -> np.ndarray:
    return np.array([hex_to_id(s) for s in image_ids], dtype=np.uint64)


# ---------------------------------------------------------------------------- the index

@dataclass
class LabelIndex:
    """Read side of the cache: memory-mapped columns and the label vocabulary."""

    path: Path
    labels: list[str]
    rows: int
    source_size: int
    build_seconds: float
    sorted_runs: bool = False  # runs (and so images) are in ascending ImageID order

    def __post_init__(self) -> None:
        self.code_of = {m: i for i, m in enumerate(self.labels)}
        self._run = self._map("run.u32", np.uint32, self.rows)
        self._runs = self._map("runs.u64", np.uint64, -1)
        self._codes = self._map("labels.u16", np.uint16, self.rows)
        self._conf = self._map("conf.u8", np.uint8, self.rows)

    def _map(self, name: str, dtype, count: int) -> np.ndarray:
        """A read-only memory map of a column file (``count`` -1: the whole file)."""
        if count == 0 or (self.path / name).stat().st_size == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(self.path / name, dtype=dtype, mode="r", shape=None if count < 0 else (count,))

    @property
    def images(self) -> np.ndarray:
        """Distinct ImageIDs (uint64, sorted) of every image that has at least one label row."""
        return self._map("images.u64", np.uint64, -1)

    def counts(self) -> dict[str, int]:
        """Rows with Confidence == 1 per MID: images verified to show the class."""
        c = np.fromfile(self.path / "counts.i64", dtype=np.int64)
        return {m: int(c[i]) for i, m in enumerate(self.labels) if c[i]}

    def rows_for(self, mids: Iterable[str]) -> np.ndarray:
        """Row numbers whose LabelName is one of ``mids`` (unknown MIDs match nothing)."""
        codes = sorted({self.code_of[m] for m in mids if m in self.code_of})
        if not codes or self.rows == 0:
            return np.zeros(0, dtype=np.int64)
        if len(codes) <= 4:  # a few compares beat a gather over every row
            mask = self._codes == np.uint16(codes[0])
            for c in codes[1:]:
                mask |= self._codes == np.uint16(c)
            return np.flatnonzero(mask)
        lut = np.zeros(len(self.labels), dtype=bool)
        lut[codes] = True
        return np.flatnonzero(lut[self._codes])

    def images_with(self, mids: Iterable[str], confidence: int | None = 1) -> np.ndarray:
        """Sorted distinct ImageIDs with a row for any of ``mids`` at that Confidence
        (1 = verified present, 0 = verified absent, None = either)."""
        rows = self.rows_for(mids)
        if confidence is not None and rows.size:
            rows = rows[self._conf[rows] == np.uint8(round(confidence * 100))]
        return self._distinct(np.asarray(self._runs[self._run[rows]]))

    def images_with_each(self, groups: Sequence[Iterable[str]], confidence: int | None = 1) -> list[np.ndarray]:
        """``images_with`` of each group of MIDs, from one pass over the label column (a
        multi-class build asks for each class and for what "other" must avoid at once).
        A MID may be in several groups."""
        groups = [list(g) for g in groups]
        if len(groups) < 2 or len(groups) > 64:
            return [self.images_with(g, confidence) for g in groups]
        dtype = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if np.iinfo(t).bits >= len(groups))
        lut = np.zeros(max(len(self.labels), 1), dtype=dtype)
        for k, group in enumerate(groups):
            for mid in group:
                if mid in self.code_of:
                    lut[self.code_of[mid]] |= dtype(1 << k)
        if self.rows == 0 or not lut.any():
            return [np.zeros(0, dtype=np.uint64) for _ in groups]
        tags = lut[self._codes]  # each row's groups, as bits
        rows = np.flatnonzero(tags)
        if confidence is not None and rows.size:
            rows = rows[self._conf[rows] == np.uint8(round(confidence * 100))]
        tags = tags[rows]
        ids = np.asarray(self._runs[self._run[rows]])
        return [self._distinct(ids[(tags & dtype(1 << k)) != 0]) for k in range(len(groups))]

    def _distinct(self, ids: np.ndarray) -> np.ndarray:
        """Sorted distinct ImageIDs of rows taken in row order."""
        if not self.sorted_runs:
            return np.unique(ids)
        # rows ascend, and so do their runs' ImageIDs: drop adjacent repeats
        keep = np.ones(ids.size, dtype=bool)
        np.not_equal(ids[1:], ids[:-1], out=keep[1:])
        return ids[keep]


def index_dir_for(csv_path: Path, cache_dir: Path) -> Path:
    resolved = str(Path(csv_path).resolve())
    digest = hashlib.sha1(resolved.encode()).hexdigest()[:12]
    return Path(cache_dir) / "index" / f"{Path(csv_path).name}-{digest}"


def open_label_index(csv_path: Path | str, cache_dir: Path | str, *, reporter: Reporter = SILENT,
                     workers: int = 2, on_bytes: Callable[[int], None] | None = None) -> LabelIndex:
    """The index of ``csv_path``, built first if it is missing or stale (size/mtime changed).

    ``reporter``: the bar of a build, and a line when a damaged index is rebuilt or another
    run's build is waited for. ``workers``, ``on_bytes``: as ``build_label_index``."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MlkitError(f"labels file not found: {csv_path}")
    out = index_dir_for(csv_path, Path(cache_dir))
    meta, problem = _usable(out, csv_path)
    if meta is not None:
        return _load(out, meta)
    lock = Path(cache_dir) / "locks" / f"index-{out.name}.lock"  # not in index/: only indexes live there
    with locked(lock, f"the label index of {csv_path.name}", reporter=reporter):
        meta, problem = _usable(out, csv_path)  # another run may have built it while we waited
        if meta is not None:
            return _load(out, meta)
        if problem:
            reporter.warn(f"The label index {out} is damaged ({problem}); rebuilding it.")
        remove_partial_folders(out, tag="tmp")  # left by a killed build (we hold the lock)
        try:
            meta = build_label_index(csv_path, out, reporter=reporter, workers=workers, on_bytes=on_bytes)
        except MlkitError as exc:
            if csv_path.name in str(exc):
                raise
            raise MlkitError(f"{csv_path.name}: {exc}") from None
        return _load(out, meta)


_VERIFIED: set[tuple[str, int, int]] = set()  # (file, size, mtime_ns) whose MD5 was checked in this process


def _usable(out: Path, csv_path: Path) -> tuple[dict | None, str | None]:
    """(its meta, or None) and why it cannot be used when it is damaged (None when it is
    only missing or stale, i.e. made from another version of the CSV or by another format)."""
    try:
        meta = json.loads((out / "meta.json").read_text())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"meta.json unreadable: {exc}"
    st = csv_path.stat()
    if not isinstance(meta, dict) or not (meta.get("format") == FORMAT_VERSION
                                          and meta.get("source_size") == st.st_size
                                          and meta.get("source_mtime_ns") == st.st_mtime_ns):
        return None, None
    for name, rec in (meta.get("files") or {}).items():
        path = out / name
        try:
            fst = path.stat()
        except OSError:
            return None, f"{name} is missing"
        if fst.st_size != rec.get("size"):
            return None, f"{name} has {fst.st_size} bytes, {rec.get('size')} recorded"
        key = (str(path), fst.st_size, fst.st_mtime_ns)
        if fst.st_mtime_ns != rec.get("mtime_ns") and key not in _VERIFIED:
            if file_md5(path) != rec.get("md5"):
                return None, f"{name} differs from its recorded MD5"
            _VERIFIED.add(key)
    if not meta.get("files"):
        return None, "meta.json lists no column files"
    return meta, None


def _load(out: Path, meta: dict) -> LabelIndex:
    return LabelIndex(path=out, labels=meta["labels"], rows=meta["rows"], source_size=meta["source_size"],
                      build_seconds=meta["build_seconds"], sorted_runs=meta.get("sorted_runs", False))

