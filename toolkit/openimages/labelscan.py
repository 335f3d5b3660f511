"""The compiled inner loop of the label index: one pass over canonical label rows.

A row is ``<16 hex digits>,<Source>,<LabelName>,<0|1>`` ending in ``\\n`` or ``\\r\\n``
(the official human-verified label files). ``scan`` reads a chunk of such rows once and
returns, per row, its run number (consecutive rows of one image form a run), a label
code local to the chunk, and the confidence; per run, the ImageID as an integer; per
label code, the label's exact bytes (as two little-endian words and a length) and its
Confidence 1 rows. Anything else (quotes, other column orders, fractional scores, over-long
labels) makes it return a negative status, and the caller uses the general CSV path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TABLE_BITS = 16  # open-addressing table of label codes: 65536 int16 slots (128 KB: stays in cache)
MAX_CODES = (1 << (TABLE_BITS - 1)) - 1  # at most half full, and codes fit in int16

OK = 0
NOT_CANONICAL = -1
TOO_MANY_LABELS = -2


HEX_VALUE = np.full(256, -1, dtype=np.int8)  # ASCII byte -> hex digit value, or -1
for _i, _c in enumerate(b"0123456789abcdef"):
    HEX_VALUE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    HEX_VALUE[_c] = 10 + _i


@njit(cache=True, nogil=True, inline="always")
def _field_end(a, q):
    """The index of the comma that ends the field starting at ``a[q]``, or -1 when a newline
    or a quote comes first (not a canonical row). Inlined into ``scan`` by Numba."""
    while True:
        c = a[q]
        if c == 44:
            return q
        if c == 10 or c == 34:
            return -1
        q += 1


@njit(cache=True, nogil=True)
def scan(a, size, hex_value, run_of_row, run_ids, codes, conf, keys, key_len, table, positives, ascending):
    """Scan ``a[:size]`` (``a`` has 16 spare bytes after it).

    Output arrays are preallocated by the caller (rows <= size // 20 + 1); ``keys`` is
    (MAX_CODES, 2) uint64 (a label's two words side by side: one cache line per probe);
    ``table`` is int16, filled with -1; ``positives`` (int64, MAX_CODES, zeroed) gets the
    Confidence 1 rows per code; ``ascending[0]`` is set to 1 when every run's ImageID is
    above the one before, else 0. Returns (status, rows, runs, label codes).

    ``a[size - 1]`` must be a newline: the field loops stop at commas and newlines only,
    and rely on it to stay inside the buffer. Rows of one image that follow each other
    are recognised by comparing their 16 ID bytes; only a new ImageID is parsed as hex.

    It is long on purpose: it is the Numba-compiled (``@njit``) inner loop, run for every
    byte of a 2.7 GB file, and the row's state (position, current run, the code table and
    its probe) stays in registers within one compiled function. Split into separately
    compiled functions, each step would be a call passing that state across jitted
    functions and returning early-exit statuses through them; only the field scan
    (``_field_end``) is shared, and it is inlined (``inline="always"``: measured no slower).
    """
    if size > 0 and a[size - 1] != 10:
        return NOT_CANONICAL, 0, 0, 0
    mask = table.size - 1
    rows = 0
    runs = 0
    n_codes = 0
    prev = -1
    in_order = 1
    p = 0
    while p < size:
        if p + 23 > size:
            return NOT_CANONICAL, rows, runs, n_codes
        same = prev >= 0
        if same:
            for j in range(16):
                if a[p + j] != a[prev + j]:
                    same = False
                    break
        if not same:
            value = np.uint64(0)
            bad = 0
            for j in range(16):
                h = hex_value[a[p + j]]
                bad |= h
                value = (value << np.uint64(4)) | np.uint64(h & 15)
            if bad < 0:
                return NOT_CANONICAL, rows, runs, n_codes
            if runs == 0 or value != run_ids[runs - 1]:  # the same ID in other letter case: same run
                if runs > 0 and value < run_ids[runs - 1]:
                    in_order = 0
                run_ids[runs] = value
                runs += 1
        prev = p
        if a[p + 16] != 44:
            return NOT_CANONICAL, rows, runs, n_codes
        q = _field_end(a, p + 17)  # past the Source
        if q < 0:
            return NOT_CANONICAL, rows, runs, n_codes
        start = q + 1
        q = _field_end(a, start)  # past the LabelName
        if q < 0:
            return NOT_CANONICAL, rows, runs, n_codes
        length = q - start
        if length < 1 or length > 16 or q + 2 >= size + 1:
            return NOT_CANONICAL, rows, runs, n_codes
        w0 = np.uint64(0)
        w1 = np.uint64(0)
        for j in range(min(length, 8)):
            w0 |= np.uint64(a[start + j]) << np.uint64(8 * j)
        for j in range(8, length):
            w1 |= np.uint64(a[start + j]) << np.uint64(8 * (j - 8))
        digit = a[q + 1]
        if digit != 48 and digit != 49:
            return NOT_CANONICAL, rows, runs, n_codes
        end = q + 2
        if a[end] == 13:
            end += 1
        if end >= size or a[end] != 10:
            return NOT_CANONICAL, rows, runs, n_codes
        slot = ((w0 * np.uint64(0x9E3779B97F4A7C15)) ^ w1) >> np.uint64(64 - TABLE_BITS)
        slot = int(slot) & mask
        while True:
            code = table[slot]
            if code < 0:
                if n_codes >= MAX_CODES:
                    return TOO_MANY_LABELS, rows, runs, n_codes
                code = n_codes
                table[slot] = code
                keys[code, 0] = w0
                keys[code, 1] = w1
                key_len[code] = length
                n_codes += 1
                break
            if keys[code, 0] == w0 and keys[code, 1] == w1:
                break
            slot = (slot + 1) & mask
        run_of_row[rows] = runs - 1
        codes[rows] = code
        if digit == 49:
            conf[rows] = 100
            positives[code] += 1
        else:
            conf[rows] = 0
        rows += 1
        p = end + 1
    ascending[0] = in_order
    return OK, rows, runs, n_codes


_scratch: dict[str, np.ndarray] = {}


def _buffer(name: str, n: int, dtype) -> np.ndarray:
    """A scratch array reused from chunk to chunk (fresh allocations of ~100 MB per chunk
    cost page faults that doubled the scan time in worker processes)."""
    arr = _scratch.get(name)
    if arr is None or arr.size < n or arr.dtype != dtype:
        arr = _scratch[name] = np.empty(n, dtype=dtype)
    return arr[:n]


def scan_chunk(buf: np.ndarray, size: int):
    """Run ``scan`` into scratch outputs; None when the rows are not canonical.

    Returns fresh arrays (run_of_row, run_ids, codes, conf, key0, key1, key_len, positives)
    and whether the runs ascend by ImageID. A label's bytes are key0 and key1 (little-endian
    words) cut to key_len: the collecting process decodes (``key_name``) only the labels it
    has not seen before."""
    cap = size // 20 + 1
    run_of_row = _buffer("run_of_row", cap, np.uint32)
    run_ids = _buffer("run_ids", cap, np.uint64)
    codes = _buffer("codes", cap, np.int16)
    conf = _buffer("conf", cap, np.uint8)
    keys = _buffer("keys", 2 * MAX_CODES, np.uint64).reshape(MAX_CODES, 2)
    key_len = _buffer("key_len", MAX_CODES, np.int64)
    table = _buffer("table", 1 << TABLE_BITS, np.int16)
    table.fill(-1)
    positives = _buffer("positives", MAX_CODES, np.int64)
    positives.fill(0)
    ascending = _buffer("ascending", 1, np.uint8)
    status, rows, runs, n_codes = scan(buf, size, HEX_VALUE, run_of_row, run_ids, codes, conf, keys,
                                       key_len, table, positives, ascending)
    if status != OK:
        return None
    return (run_of_row[:rows].copy(), run_ids[:runs].copy(), codes[:rows].copy(), conf[:rows].copy(),
            keys[:n_codes, 0].copy(), keys[:n_codes, 1].copy(), key_len[:n_codes].astype(np.uint8),
            positives[:n_codes].copy(), bool(ascending[0]))


def key_name(word0: int, word1: int, length: int) -> str:
    """The label a scanned key stands for (its bytes as two little-endian words)."""
    raw = int(word0).to_bytes(8, "little") + int(word1).to_bytes(8, "little")
    return raw[:length].decode("utf-8", "replace")
