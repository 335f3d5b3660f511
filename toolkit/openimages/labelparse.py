"""Parsing one byte range of an Open Images labels CSV into columns (a ``Chunk``).

Canonical rows (``<16 hex>,<source>,<mid>,<0|1>``, the official files) go through the
compiled scanner in ``labelscan``; any other valid CSV (quotes, float confidences, another
column order) through pyarrow. Ranges start and end at line boundaries, so each parses on
its own, in a worker process for big files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MlkitError
from .labelscan import scan_chunk
from .layout import LABEL_COLUMNS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class Chunk:
    """One parsed range: per row its run, label code and confidence; per run its ImageID."""

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


def parse_fast(buf: bytes | bytearray | memoryview | np.ndarray, size: int | None = None) -> Chunk | None:
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
    return Chunk(run_of_row=run_of_row, run_ids=run_ids, keys=keys, key_bytes=np.stack([key0, key1], axis=1),
                 names=None, codes=codes, key_len=key_len, conf=conf, local_counts=positives,
                 runs_sorted=ascending)


def parse_general(buf: bytes, column_names: list[str]) -> Chunk:
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
        bad = next((s for s in image_ids if not is_hex16(s)), "?")
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
    return Chunk(run_of_row=run_of_row, run_ids=run_ids, keys=None, key_bytes=None, names=names, codes=codes,
                 key_len=None, conf=conf,
                 local_counts=np.bincount(codes[conf == 100], minlength=len(names)).astype(np.int64),
                 runs_sorted=bool(np.all(run_ids[1:] > run_ids[:-1])))


def is_hex16(s: object) -> bool:
    try:
        return isinstance(s, str) and len(s) == 16 and int(s, 16) >= 0
    except ValueError:
        return False


def read_header(path: Path) -> tuple[list[str], int]:
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
    if len(cols) == 4 and is_hex16(cols[0]):  # no header row: assume the official order
        return list(LABEL_COLUMNS), 0
    raise MlkitError(
        f"{path.name} does not look like an Open Images labels file: its first line is {text[:80]!r}; "
        f"expected the header {','.join(LABEL_COLUMNS)}")


def chunk_ranges(path: Path, offset: int, chunk_bytes: int) -> list[tuple[int, int]]:
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


def parse_range(path: str, start: int, end: int, columns: list[str], canonical: bool) -> Chunk:
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
        return empty_chunk()
    chunk = parse_fast(buf, got) if canonical else None
    if chunk is None:
        chunk = parse_general(bytes(buf[:got]), columns)
    return chunk


_READ_BUFFER: list[np.ndarray] = []


def _read_buffer(n: int) -> np.ndarray:
    """One input buffer per process, reused from chunk to chunk (no fresh page faults)."""
    if not _READ_BUFFER or _READ_BUFFER[0].size < n:
        _READ_BUFFER[:] = [np.empty(n, dtype=np.uint8)]
    return _READ_BUFFER[0][:n]


def empty_chunk() -> Chunk:
    return Chunk(run_of_row=np.zeros(0, np.uint32), run_ids=np.zeros(0, np.uint64), keys=None, key_bytes=None,
                 names=[], codes=np.zeros(0, np.int64), key_len=None, conf=np.zeros(0, np.uint8),
                 local_counts=np.zeros(0, np.int64), runs_sorted=True)
