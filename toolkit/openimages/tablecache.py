"""Parquet copies of the big per-image CSVs (image lists, boxes), looked up by ImageID.

The v6 train image list is ~2.7 GB of quoted text (titles, authors, URLs). It is
streamed once through pyarrow's CSV reader into a Parquet file of modest row groups; the
official files are sorted by ImageID, so a lookup of a few hundred IDs reads only the
row groups whose min/max statistics can hold them.

Beside each Parquet file, ``<file>.json`` records its size, MD5 and modification time at
write; a copy that differs (or that pyarrow cannot open) is rebuilt, with a message. A
build holds ``<cache>/locks/table-<file>.lock``, so two runs never write one copy at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..errors import MlkitError
from ..fsutil import atomic_write_text, file_md5, locked

FORMAT_VERSION = 1


class CsvTable:
    """A CSV with an ``ImageID`` column, cached as Parquet, queried by ImageID."""

    def __init__(self, parquet: Path):
        self.parquet = parquet
        self._dataset = pads.dataset(str(parquet), format="parquet")

    @property
    def columns(self) -> list[str]:
        return self._dataset.schema.names

    def rows_for(self, image_ids: Iterable[str], columns: Sequence[str] | None = None) -> pa.Table:
        ids = sorted(set(image_ids))
        if not ids:
            return self._dataset.schema.empty_table()
        return self._dataset.to_table(columns=list(columns) if columns else None,
                                      filter=pc.field("ImageID").isin(ids))

    def count_rows(self) -> int:
        return self._dataset.count_rows()


def _cache_path(csv_path: Path, cache_dir: Path) -> Path:
    digest = hashlib.sha1(str(csv_path.resolve()).encode()).hexdigest()[:12]
    st = csv_path.stat()
    return Path(cache_dir) / "tables" / f"{csv_path.name}-{digest}-{st.st_size}-{st.st_mtime_ns}-v{FORMAT_VERSION}.parquet"


def open_csv_table(csv_path: Path | str, cache_dir: Path | str, required: Sequence[str],
                   *, kind: str = "table") -> CsvTable:
    """The Parquet copy of ``csv_path`` (built on first use), after checking its header.

    ``required``: columns that must be present (the error names the missing ones).
    """
    csv_path = Path(csv_path)
    with open(csv_path, "rb") as f:
        header = f.readline().decode("utf-8-sig", "replace").strip()
    names = [h.strip().strip('"') for h in header.split(",")]
    missing = [c for c in required if c not in names]
    if missing:
        raise MlkitError(
            f"{csv_path.name} is not an Open Images {kind}: missing column(s) {', '.join(missing)}. "
            f"Expected the header {','.join(required)}")
    out = _cache_path(csv_path, Path(cache_dir))
    table, problem = _usable(out)
    if table is not None:
        return table
    with locked(Path(cache_dir) / "locks" / f"table-{out.name}.lock", f"the table cache of {csv_path.name}"):
        table, problem = _usable(out)  # another run may have built it while we waited
        if table is not None:
            return table
        if problem:
            print(f"The cached table {out} is damaged ({problem}); rebuilding it.", file=sys.stderr)
        for stale in out.parent.glob(f".{out.name}.*.part"):  # left by a killed build (we hold the lock)
            stale.unlink(missing_ok=True)
        _convert(csv_path, out, names)
        st = out.stat()
        atomic_write_text(_sidecar(out), json.dumps({"size": st.st_size, "md5": file_md5(out),
                                                      "mtime_ns": st.st_mtime_ns}) + "\n")
        return CsvTable(out)


_VERIFIED: set[tuple[str, int, int]] = set()  # (file, size, mtime_ns) whose MD5 was checked in this process


def _sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def _usable(out: Path) -> tuple[CsvTable | None, str | None]:
    """The cached copy if it is the one its sidecar describes (size always; MD5 when the
    modification time changed), else None and what is wrong (None when it is missing)."""
    try:
        st = out.stat()
    except FileNotFoundError:
        return None, None
    try:
        rec = json.loads(_sidecar(out).read_text())
    except (OSError, ValueError):
        return None, "no record of its size and checksum"
    if st.st_size != rec.get("size"):
        return None, f"{st.st_size} bytes, {rec.get('size')} recorded"
    key = (str(out), st.st_size, st.st_mtime_ns)
    if st.st_mtime_ns != rec.get("mtime_ns") and key not in _VERIFIED:
        if file_md5(out) != rec.get("md5"):
            return None, "it differs from its recorded MD5"
        _VERIFIED.add(key)
    try:
        return CsvTable(out), None
    except (pa.ArrowInvalid, OSError) as exc:
        return None, f"pyarrow cannot read it: {exc}"


def _convert(csv_path: Path, out: Path, names: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False),
        )
        with pq.ParquetWriter(tmp, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch]), row_group_size=65536)
        os.replace(tmp, out)
    except pa.ArrowInvalid as exc:
        raise MlkitError(f"malformed CSV {csv_path.name}: {exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # drop older copies of the same source file (it changed since they were made)
    prefix = out.name.rsplit("-", 3)[0]
    for old in out.parent.glob(f"{prefix}-*.parquet"):
        if old != out and old.name.rsplit("-", 3)[0] == prefix:
            old.unlink(missing_ok=True)
            _sidecar(old).unlink(missing_ok=True)


def clear(cache_dir: Path) -> None:
    shutil.rmtree(Path(cache_dir) / "tables", ignore_errors=True)
