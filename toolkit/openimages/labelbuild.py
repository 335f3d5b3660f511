"""Building the label index: one scan of a labels CSV into the column files.

The file is cut into byte ranges of about ``CHUNK_BYTES`` at line boundaries; worker
processes parse them (``labelparse``), and this process appends each range's columns in
file order, maps each chunk's label codes onto one vocabulary and counts the Confidence 1
rows per label. The index folder is written whole or not at all (``fsutil.atomic_folder``);
``meta.json`` records the source's size and modification time, and each column file's
size, MD5 and modification time, for ``labelindex`` to check on every open.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ContextManager

import numpy as np

from ..errors import MlkitError
from ..fsutil import atomic_folder, file_md5
from ..progress import SILENT, Bar, Reporter
from .labelparse import Chunk, chunk_ranges, parse_range, read_header
from .labelscan import key_name
from .layout import LABEL_COLUMNS

FORMAT_VERSION = 3  # 3: meta.json records the column files' sizes and MD5s
CHUNK_BYTES = 48 << 20
MAX_LABELS = 65535
BAR_MIN_BYTES = 8 << 20  # a smaller file is scanned too fast for a bar to mean anything

_APPENDED = ("run.u32", "runs.u64", "labels.u16", "conf.u8")  # written chunk by chunk
_COLUMN_FILES = (*_APPENDED, "images.u64", "counts.i64")


def build_label_index(csv_path: Path, out: Path, *, reporter: Reporter = SILENT, workers: int = 2,
                      chunk_bytes: int | None = None,
                      on_bytes: Callable[[int], None] | None = None) -> dict:
    """Scan ``csv_path`` once into the column files of ``out`` (written atomically).

    ``reporter``: a bar over the bytes scanned (for a file over ``BAR_MIN_BYTES``).
    ``workers``: parsing processes (1 or less: parse in this process). ``on_bytes``: called
    with the size of each range once it is in. Returns what ``meta.json`` holds."""
    t0 = time.perf_counter()
    st = csv_path.stat()
    columns, offset = read_header(csv_path)
    canonical = columns == list(LABEL_COLUMNS)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the index appears whole or not at all; a killed build leaves .<name>.tmp-*, cleared under the lock
    with atomic_folder(out, tag="tmp") as tmp:
        ranges = chunk_ranges(csv_path, offset, chunk_bytes or CHUNK_BYTES)
        with _Columns(tmp, csv_path.name) as cols, \
                _scan_bar(reporter, csv_path.name, st.st_size - offset) as bar, \
                _pool(workers if len(ranges) > 2 else 1) as pool:
            jobs = ((str(csv_path), a, b, columns, canonical) for a, b in ranges)
            for buf_len, chunk in _ordered_map(pool, jobs, ahead=workers + 1):
                cols.add(chunk)
                bar.advance(buf_len)
                if on_bytes:
                    on_bytes(buf_len)
        meta = {
            "format": FORMAT_VERSION,
            "source": str(csv_path.resolve()),
            "source_size": st.st_size,
            "source_mtime_ns": st.st_mtime_ns,
            "columns": columns,
            "rows": cols.rows,
            "images": _write_images(tmp, cols.sorted_runs),
            "sorted_runs": bool(cols.sorted_runs),
            "labels": cols.write_counts(tmp / "counts.i64"),
            "build_seconds": round(time.perf_counter() - t0, 3),
        }
        meta["files"] = {name: _file_record(tmp / name) for name in _COLUMN_FILES}
        (tmp / "meta.json").write_text(json.dumps(meta))
    return meta


def _scan_bar(reporter: Reporter, name: str, total: int) -> ContextManager[Bar]:
    if total > BAR_MIN_BYTES:
        return reporter.bar(f"indexing {name}", total, unit="B")
    return nullcontext(Bar())


def _write_images(tmp: Path, sorted_runs: bool) -> int:
    """Write ``images.u64``, the distinct ImageIDs of the runs, sorted; return how many."""
    runs = np.fromfile(tmp / "runs.u64", dtype=np.uint64)
    if sorted_runs:  # the official files are sorted by ImageID: no sort needed
        keep = np.ones(runs.size, dtype=bool)
        np.not_equal(runs[1:], runs[:-1], out=keep[1:])
        images = runs[keep]
    else:
        images = np.unique(runs)
    images.tofile(tmp / "images.u64")
    return int(images.size)


def _file_record(path: Path) -> dict[str, Any]:
    fst = path.stat()  # os.replace of the folder keeps each file's mtime
    return {"size": fst.st_size, "md5": file_md5(path), "mtime_ns": fst.st_mtime_ns}


class _Columns:
    """The column files written chunk by chunk, with the label vocabulary (name -> code)
    and the Confidence 1 rows per code."""

    def __init__(self, tmp: Path, source_name: str) -> None:
        self._source_name = source_name
        self.vocab: dict[str, int] = {}
        self._known = _KnownKeys()
        self.counts = np.zeros(MAX_LABELS, dtype=np.int64)
        self.rows = 0
        self.n_runs = 0
        self.sorted_runs = True
        self._last_run_id = -1
        self._files = {name: open(tmp / name, "wb") for name in _APPENDED}

    def __enter__(self) -> _Columns:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files.values():
            f.close()

    def code_for(self, name: str) -> int:
        code = self.vocab.get(name)
        if code is None:
            code = len(self.vocab)
            if code >= MAX_LABELS:
                raise MlkitError(f"{self._source_name} has more than {MAX_LABELS} distinct labels; "
                                 "this is not an Open Images image-level labels file")
            self.vocab[name] = code
        return code

    def add(self, chunk: Chunk) -> None:
        """Append one parsed range (ranges come in file order)."""
        if chunk.names is not None:
            lut = np.array([self.code_for(nm) for nm in chunk.names], dtype=np.uint16)
        else:
            lut = self._known.codes_for(chunk, self.code_for)
        codes = lut[chunk.codes] if lut.size else np.zeros(0, dtype=np.uint16)
        if self.n_runs + chunk.run_ids.size >= 2**32:
            raise MlkitError(f"{self._source_name} is too large to index (over 4 billion images)")
        self._files["run.u32"].write(memoryview(chunk.run_of_row + np.uint32(self.n_runs)))
        self._files["runs.u64"].write(memoryview(np.ascontiguousarray(chunk.run_ids)))
        self._files["labels.u16"].write(memoryview(codes))
        self._files["conf.u8"].write(memoryview(np.ascontiguousarray(chunk.conf)))
        self.counts[lut] += chunk.local_counts[: lut.size]  # a chunk's codes are distinct
        if chunk.run_ids.size and self.sorted_runs:
            # >=: an image's rows may straddle two chunks
            self.sorted_runs = chunk.runs_sorted and int(chunk.run_ids[0]) >= self._last_run_id
            self._last_run_id = int(chunk.run_ids[-1])
        self.n_runs += chunk.run_ids.size
        self.rows += chunk.rows

    def write_counts(self, path: Path) -> list[str]:
        """Write the counts per code to ``path``; return the labels in code order."""
        labels = [name for name, _ in sorted(self.vocab.items(), key=lambda kv: kv[1])]
        self.counts[: len(labels)].tofile(path)
        return labels


class _KnownKeys:
    """Label keys seen so far (sorted), their codes and exact bytes: mapping a chunk's
    ~20k keys to codes is a vectorised search, not a Python loop."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.uint64)
        self.codes = np.zeros(0, dtype=np.uint16)
        self.bytes = np.zeros((0, 2), dtype=np.uint64)

    def codes_for(self, chunk: Chunk, code_for: Callable[[str], int]) -> np.ndarray:
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
            pending.put((job[2] - job[1], pool.submit(parse_range, *job)))
            inflight += 1
        if inflight == 0:
            return
        size, fut = pending.get()
        inflight -= 1
        yield size, fut.result()
