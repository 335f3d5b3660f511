"""Parquet copies of the big per-image CSVs (image lists, boxes), looked up by ImageID.

The v6 train image list is ~2.7 GB of quoted text (titles, authors, URLs). It is
streamed once through pyarrow's CSV reader into a Parquet file of modest row groups; the
official files are sorted by ImageID, so a lookup of a few hundred IDs reads only the
row groups whose min/max statistics can hold them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..errors import MlkitError

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
    if not out.is_file():
        _convert(csv_path, out, names)
    return CsvTable(out)


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


def clear(cache_dir: Path) -> None:
    shutil.rmtree(Path(cache_dir) / "tables", ignore_errors=True)
