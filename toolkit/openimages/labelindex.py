"""A columnar cache of an Open Images image-level labels CSV.

The v7 train labels file is ~2.7 GB and ~58M rows: loading it whole with pandas takes
about 9 GB. Instead it is scanned once, in bounded chunks by two worker processes, into flat
column files that later runs memory-map:

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
a damaged one is rebuilt, with a message. Building holds a lock (``<cache>/locks/index-<name>.lock``) so that
two runs never build one index at once, and removes the temporary folders of builds that
were killed.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MlkitError
from ..fsutil import atomic_folder, file_md5, locked, remove_partial_folders
from .labelscan import key_name, scan_chunk
from .layout import LABEL_COLUMNS

FORMAT_VERSION = 3  # 3: meta.json records the column files' sizes and MD5s
CHUNK_BYTES = 48 << 20
MAX_LABELS = 65535
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------------- ImageIDs

def hex_to_id(image_id: str) -> int:
    """ImageID (16 hex digits) -> its uint64 value."""
    if len(image_id) != 16:
        raise ValueError(f"an Open Images ImageID has 16 hex digits, got {image_id!r}")
    return int(image_id, 16)


def ids_to_hex(ids: Iterable[int] | np.ndarray) -> list[str]:
    return [f"{int(v):016x}" for v in ids]


def hex_array_to_ids(image_ids: Iterable[str]) -> np.ndarray:
    return np.array([hex_to_id(s) for s in image_ids], dtype=np.uint64)


# ---------------------------------------------------------------------------- parsing

@dataclass
class _Chunk:
    run_of_row: np.ndarray  # uint32: which run of consecutive same-image rows each row is in
    run_ids: np.ndarray     # uint64: the ImageID of each run
    keys: np.ndarray | None  # fast path: uint64 label keys (hash of the MID bytes) for `codes`
    key_bytes: np.ndarray | None  # fast path: (n_keys, 2) uint64, the MID's 16 bytes per key
    names: list[str] | None  # general path: label names for `codes`
    codes: np.ndarray       # index into keys (fast path) or names (general path)
    key_len: np.ndarray | None  # fast path: uint8, the MID's length per key
    conf: np.ndarray        # uint8, confidence x 100
    # worked out in the worker, so the collecting process stays light:
    local_counts: np.ndarray  # int64: rows with Confidence 1 per code
    runs_sorted: bool         # run_ids strictly increasing

    @property
    def rows(self) -> int:
        return int(self.run_of_row.size)


def _runs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run number of each row, ImageID of each run) for consecutive equal ids."""
    new_run = np.ones(ids.size, dtype=bool)
    if ids.size:
        np.not_equal(ids[1:], ids[:-1], out=new_run[1:])
    return (np.cumsum(new_run) - 1).astype(np.uint32), ids[new_run]


def _parse_fast(buf: bytes | bytearray | memoryview | np.ndarray, size: int | None = None) -> _Chunk | None:
    """Canonical rows ``<16 hex>,<source>,<mid>,<0|1>`` in one compiled pass (see
    ``labelscan``); None if the chunk is not canonical (the general path takes it).

    ``size``: the data length when ``buf`` carries at least 16 spare bytes after it.
    """
    whole = np.frombuffer(buf, dtype=np.uint8)
    if size is None:
        end = b"\n" if whole.size and whole[-1] != 10 else b""  # the scanner needs a final newline
        whole = np.concatenate([whole, np.frombuffer(end, dtype=np.uint8), np.zeros(16, dtype=np.uint8)])
        size = whole.size - 16
    scanned = scan_chunk(whole, size)
    if scanned is None:
        return None
    run_of_row, run_ids, codes, conf, key0, key1, key_len, positives, ascending = scanned
    keys = (key0 * _GOLDEN) ^ key1
    return _Chunk(run_of_row=run_of_row, run_ids=run_ids, keys=keys, key_bytes=np.stack([key0, key1], axis=1),
                  names=None, codes=codes, key_len=key_len, conf=conf, local_counts=positives,
                  runs_sorted=ascending)


def _parse_general(buf: bytes, column_names: list[str]) -> _Chunk:
    """Any valid CSV chunk (quotes, float confidences, column order) via pyarrow."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(buf),
            read_options=pacsv.ReadOptions(column_names=column_names),
            convert_options=pacsv.ConvertOptions(
                include_columns=["ImageID", "LabelName", "Confidence"],
                column_types={"ImageID": pa.string(), "LabelName": pa.string(), "Confidence": pa.float64()},
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MlkitError(f"malformed labels CSV: {exc}. Expected columns {','.join(LABEL_COLUMNS)}.") from None
    image_ids = table.column("ImageID").to_pylist()
    try:
        ids = np.array([int(s, 16) for s in image_ids], dtype=np.uint64)
    except (ValueError, TypeError):
        bad = next((s for s in image_ids if not _is_hex16(s)), "?")
        raise MlkitError(f"malformed ImageID {bad!r}: an Open Images ImageID has 16 hex digits") from None
    if any(len(s) != 16 for s in image_ids):
        bad = next(s for s in image_ids if len(s) != 16)
        raise MlkitError(f"malformed ImageID {bad!r}: an Open Images ImageID has 16 hex digits")
    enc = pc.dictionary_encode(table.column("LabelName")).combine_chunks()
    conf = table.column("Confidence").to_numpy(zero_copy_only=False)
    if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
        raise MlkitError("malformed labels CSV: Confidence must be a number between 0 and 1")
    run_of_row, run_ids = _runs(ids)
    names = enc.dictionary.to_pylist()
    codes = enc.indices.to_numpy(zero_copy_only=False)
    conf = np.rint(conf * 100).astype(np.uint8)
    return _Chunk(run_of_row=run_of_row, run_ids=run_ids, keys=None, key_bytes=None, names=names, codes=codes,
                  key_len=None, conf=conf,
                  local_counts=np.bincount(codes[conf == 100], minlength=len(names)).astype(np.int64),
                  runs_sorted=bool(np.all(run_ids[1:] > run_ids[:-1])))


def _is_hex16(s: object) -> bool:
    try:
        return isinstance(s, str) and len(s) == 16 and int(s, 16) >= 0
    except ValueError:
        return False


def _read_header(path: Path) -> tuple[list[str], int]:
    """The column names and the byte offset of the first data row."""
    with open(path, "rb") as f:
        first = f.readline()
    text = first.decode("utf-8-sig", "replace").strip()
    cols = [c.strip().strip('"') for c in text.split(",")]
    if "ImageID" in cols:
        missing = [c for c in ("ImageID", "LabelName", "Confidence") if c not in cols]
        if missing:
            raise MlkitError(
                f"{path.name}: missing column(s) {', '.join(missing)}; an Open Images labels file has "
                f"the header {','.join(LABEL_COLUMNS)}")
        return cols, len(first)
    if len(cols) == 4 and _is_hex16(cols[0]):  # no header row: assume the official order
        return list(LABEL_COLUMNS), 0
    raise MlkitError(
        f"{path.name} does not look like an Open Images labels file: its first line is {text[:80]!r}; "
        f"expected the header {','.join(LABEL_COLUMNS)}")


def _chunk_ranges(path: Path, offset: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``chunk_bytes`` that start and end at line boundaries."""
    size = path.stat().st_size
    ranges = []
    with open(path, "rb") as f:
        start = offset
        while start < size:
            end = min(start + chunk_bytes, size)
            if end < size:
                f.seek(end)
                tail = f.readline()  # run on to the end of the line
                end += len(tail)
            ranges.append((start, end))
            start = end
    return ranges


def _parse_range(path: str, start: int, end: int, columns: list[str], canonical: bool) -> _Chunk:
    """Read and parse one byte range (runs in a worker process for big files)."""
    size = end - start
    buf = _read_buffer(size + 17)  # room for a missing final newline and 16-byte reads
    with open(path, "rb") as f:
        f.seek(start)
        got = f.readinto(memoryview(buf)[:size])
    if got and buf[got - 1] != 10:
        buf[got] = 10
        got += 1
    buf[got:got + 16] = 0
    if got == 0 or (got < 64 and not bytes(buf[:got]).strip()):
        return _empty_chunk()
    chunk = _parse_fast(buf, got) if canonical else None
    if chunk is None:
        chunk = _parse_general(bytes(buf[:got]), columns)
    return chunk


_READ_BUFFER: list[np.ndarray] = []


def _read_buffer(n: int) -> np.ndarray:
    """One input buffer per process, reused from chunk to chunk (no fresh page faults)."""
    if not _READ_BUFFER or _READ_BUFFER[0].size < n:
        _READ_BUFFER[:] = [np.empty(n, dtype=np.uint8)]
    return _READ_BUFFER[0][:n]


def _empty_chunk() -> _Chunk:
    return _Chunk(run_of_row=np.zeros(0, np.uint32), run_ids=np.zeros(0, np.uint64), keys=None, key_bytes=None,
                  names=[],
                  codes=np.zeros(0, np.int64), key_len=None, conf=np.zeros(0, np.uint8),
                  local_counts=np.zeros(0, np.int64), runs_sorted=True)


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


def open_label_index(csv_path: Path | str, cache_dir: Path | str, *, progress: bool = True,
                     workers: int = 2, on_bytes: Callable[[int], None] | None = None) -> LabelIndex:
    """The index of ``csv_path``, built first if it is missing or stale (size/mtime changed)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MlkitError(f"labels file not found: {csv_path}")
    out = index_dir_for(csv_path, Path(cache_dir))
    meta, problem = _usable(out, csv_path)
    if meta is not None:
        return _load(out, meta)
    lock = Path(cache_dir) / "locks" / f"index-{out.name}.lock"  # not in index/: only indexes live there
    with locked(lock, f"the label index of {csv_path.name}"):
        meta, problem = _usable(out, csv_path)  # another run may have built it while we waited
        if meta is not None:
            return _load(out, meta)
        if problem:
            print(f"The label index {out} is damaged ({problem}); rebuilding it.", file=sys.stderr)
        remove_partial_folders(out, tag="tmp")  # left by a killed build (we hold the lock)
        try:
            meta = build_label_index(csv_path, out, progress=progress, workers=workers, on_bytes=on_bytes)
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


def build_label_index(csv_path: Path, out: Path, *, progress: bool = True, workers: int = 2,
                      chunk_bytes: int | None = None,
                      on_bytes: Callable[[int], None] | None = None) -> dict:
    """Scan ``csv_path`` once into the column files of ``out`` (written atomically)."""
    t0 = time.perf_counter()
    st = csv_path.stat()
    columns, offset = _read_header(csv_path)
    canonical = columns == list(LABEL_COLUMNS)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the index appears whole or not at all; a killed build leaves .<name>.tmp-*, cleared under the lock
    with atomic_folder(out, tag="tmp") as tmp:
        try:
            vocab: dict[str, int] = {}
            known = _KnownKeys()
            counts = np.zeros(MAX_LABELS, dtype=np.int64)
            rows = 0
            n_runs = 0
            sorted_runs = True
            last_run_id = -1
            files = {name: open(tmp / name, "wb") for name in ("run.u32", "runs.u64", "labels.u16", "conf.u8")}

            def code_for(name: str) -> int:
                code = vocab.get(name)
                if code is None:
                    code = len(vocab)
                    if code >= MAX_LABELS:
                        raise MlkitError(f"{csv_path.name} has more than {MAX_LABELS} distinct labels; "
                                         "this is not an Open Images image-level labels file")
                    vocab[name] = code
                return code

            bar = _ScanProgress(csv_path.name, st.st_size - offset, enabled=progress)
            ranges = _chunk_ranges(csv_path, offset, chunk_bytes or CHUNK_BYTES)
            with bar, _pool(workers if len(ranges) > 2 else 1) as pool:
                jobs = ((str(csv_path), a, b, columns, canonical) for a, b in ranges)
                for buf_len, chunk in _ordered_map(pool, jobs, ahead=workers + 1):
                    if chunk.names is not None:
                        lut = np.array([code_for(nm) for nm in chunk.names], dtype=np.uint16)
                    else:
                        lut = known.codes_for(chunk, code_for)
                    codes = lut[chunk.codes] if lut.size else np.zeros(0, dtype=np.uint16)
                    if n_runs + chunk.run_ids.size >= 2**32:
                        raise MlkitError(f"{csv_path.name} is too large to index (over 4 billion images)")
                    files["run.u32"].write(memoryview(chunk.run_of_row + np.uint32(n_runs)))
                    files["runs.u64"].write(memoryview(np.ascontiguousarray(chunk.run_ids)))
                    files["labels.u16"].write(memoryview(codes))
                    files["conf.u8"].write(memoryview(np.ascontiguousarray(chunk.conf)))
                    counts[lut] += chunk.local_counts[: lut.size]  # a chunk's codes are distinct
                    if chunk.run_ids.size and sorted_runs:
                        # >=: an image's rows may straddle two chunks
                        sorted_runs = chunk.runs_sorted and int(chunk.run_ids[0]) >= last_run_id
                        last_run_id = int(chunk.run_ids[-1])
                    n_runs += chunk.run_ids.size
                    rows += chunk.rows
                    bar.advance(buf_len)
                    if on_bytes:
                        on_bytes(buf_len)
            for f in files.values():
                f.close()
            runs = np.fromfile(tmp / "runs.u64", dtype=np.uint64)
            if sorted_runs:  # the official files are sorted by ImageID: no sort needed
                keep = np.ones(runs.size, dtype=bool)
                np.not_equal(runs[1:], runs[:-1], out=keep[1:])
                images = runs[keep]
            else:
                images = np.unique(runs)
            images.tofile(tmp / "images.u64")
            labels = [name for name, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
            counts[: len(labels)].tofile(tmp / "counts.i64")
            meta = {
                "format": FORMAT_VERSION,
                "source": str(csv_path.resolve()),
                "source_size": st.st_size,
                "source_mtime_ns": st.st_mtime_ns,
                "columns": columns,
                "rows": rows,
                "images": int(images.size),
                "sorted_runs": bool(sorted_runs),
                "labels": labels,
                "build_seconds": round(time.perf_counter() - t0, 3),
            }
            meta["files"] = {}
            for name in ("run.u32", "runs.u64", "labels.u16", "conf.u8", "images.u64", "counts.i64"):
                fst = (tmp / name).stat()  # os.replace of the folder keeps each file's mtime
                meta["files"][name] = {"size": fst.st_size, "md5": file_md5(tmp / name), "mtime_ns": fst.st_mtime_ns}
            (tmp / "meta.json").write_text(json.dumps(meta))
        except BaseException:
            for f in locals().get("files", {}).values():
                f.close()
            raise
    return meta


class _KnownKeys:
    """Label keys seen so far (sorted), their codes and exact bytes: mapping a chunk's
    ~20k keys to codes is a vectorised search, not a Python loop."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.codes = np.zeros(0, dtype=np.uint16)
        self.bytes = np.zeros((0, 2), dtype=np.uint64)

    def codes_for(self, chunk: _Chunk, code_for: Callable[[str], int]) -> np.ndarray:
        pos = np.searchsorted(self.keys, chunk.keys)
        found = pos < self.keys.size
        found[found] = self.keys[pos[found]] == chunk.keys[found]
        if found.any():
            same = self.bytes[pos[found]] == chunk.key_bytes[found]
            if not same.all():  # two different MIDs share a 64-bit key
                raise MlkitError("two label names hash alike in the label index; please report this")
        if not found.all():
            new = np.flatnonzero(~found)
            new_codes = np.array([code_for(key_name(w0, w1, n)) for (w0, w1), n
                                  in zip(chunk.key_bytes[new].tolist(), chunk.key_len[new].tolist())], dtype=np.uint16)
            keys = np.concatenate([self.keys, chunk.keys[new]])
            order = np.argsort(keys, kind="stable")
            self.keys = keys[order]
            self.codes = np.concatenate([self.codes, new_codes])[order]
            self.bytes = np.concatenate([self.bytes, chunk.key_bytes[new]])[order]
            pos = np.searchsorted(self.keys, chunk.keys)
        return self.codes[pos]


class _InProcess:
    """The executor interface, run in the caller's process (small files, tests)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller through the future
            fut.set_exception(exc)
        return fut


def _pool(workers: int):
    """Worker processes: the parse is NumPy-heavy and holds the GIL too often for threads
    to scale. Forked where that is safe (Linux, TensorFlow not loaded: its threads do not
    survive a fork), else spawned."""
    if workers <= 1:
        return _InProcess()
    safe_fork = sys.platform.startswith("linux") and "tensorflow" not in sys.modules
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork" if safe_fork else "spawn"))


def _ordered_map(pool, jobs: Iterator[tuple], ahead: int):
    """(bytes, parsed chunk) in file order, with at most ``ahead`` ranges in flight."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    inflight = 0
    it = iter(jobs)
    exhausted = False
    while True:
        while not exhausted and inflight < ahead:
            try:
                job = next(it)
            except StopIteration:
                exhausted = True
                break
            pending.put((job[2] - job[1], pool.submit(_parse_range, *job)))
            inflight += 1
        if inflight == 0:
            return
        size, fut = pending.get()
        inflight -= 1
        yield size, fut.result()


class _ScanProgress:
    """A rich progress bar over bytes scanned (stderr), or nothing."""

    def __init__(self, name: str, total: int, enabled: bool):
        self._lock = threading.Lock()
        self._progress = None
        if enabled and total > (8 << 20):
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)

            console = Console(stderr=True)
            self._progress = Progress(TextColumn(f"indexing {name}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
                                      console=console, disable=not console.is_terminal)  # piped: no bar
            self._task = self._progress.add_task("scan", total=total)

    def __enter__(self):
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.stop()

    def advance(self, n: int) -> None:
        if self._progress:
            self._progress.advance(self._task, n)
