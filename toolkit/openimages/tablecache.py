"""Parquet copies of the big per-image CSVs (image lists, boxes), looked up by ImageID.

The v6 train image list is ~2.7 GB of quoted text (titles, authors, URLs). It is
streamed through pyarrow's CSV reader into a Parquet file of modest row groups, sorted
by ImageID on the way, so a lookup of a few hundred IDs reads only the row groups whose
min/max statistics can hold them. The sort is needed: the official image lists are not
sorted by ImageID (a third-party check of the real files found rows such as
``4fa8054781a4c382`` before ``d05c3e451f79174d``; see the project's notes on Open
Images, docs/openimages.md "Sort order"), and unsorted row groups each span nearly the
whole ID range, so their statistics prune nothing.

Sorting a 2.7 GB file in memory would need several GB, so it is an external merge sort
with bounded memory, whatever the order or spread of the IDs: each CSV block is sorted
and written as a run of small row groups, with every 64th ID kept as a sample; the
samples' quantiles cut the ID space into ranges of about ``RANGE_ROWS`` rows, and each
range is gathered from the run row groups whose statistics overlap it, sorted and
appended to the final file.

Beside each Parquet file, ``<file>.json`` records its size, MD5 and modification time at
write; a copy that differs (or that pyarrow cannot open) is rebuilt, with a message. A
build holds ``<cache>/locks/table-<file>.lock``, so two runs never write one copy at once.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import MlkitError
from ..fsutil import atomic_path, atomic_write_text, file_md5, locked
from ..progress import SILENT, Reporter

FORMAT_VERSION = 2  # 2: rows sorted by ImageID
ROW_GROUP_ROWS = 2048   # small groups: a lookup of a few hundred IDs skips most of them
RUN_GROUP_ROWS = 2048   # row groups of the sorted runs (the merge reads only those it needs)
RANGE_ROWS = 250_000    # rows sorted in memory at a time (~100 MB of an image list)
READ_GROUPS = 64        # row groups a lookup decodes at a time


class CsvTable:
    """A CSV with an ``ImageID`` column, cached as Parquet, queried by ImageID."""

    def __init__(self, parquet: Path):
        self.parquet = parquet
        self._file = pq.ParquetFile(str(parquet))
        self._ranges = _id_ranges(self._file)
        self.row_groups_read = 0
        """Row groups the last ``rows_for`` read (the rest were pruned by their statistics)."""

    @property
    def columns(self) -> list[str]:
        return self._file.schema_arrow.names

    @property
    def row_groups(self) -> int:
        return self._file.num_row_groups

    def rows_for(self, image_ids: Iterable[str], columns: Sequence[str] | None = None) -> pa.Table:
        ids = sorted(set(image_ids))
        cols = list(columns) if columns else None
        if cols and "ImageID" not in cols:
            cols = ["ImageID", *cols]
        groups = [g for g, (lo, hi) in enumerate(self._ranges)
                  if lo is None or bisect.bisect_left(ids, lo) < bisect.bisect_right(ids, hi)]
        self.row_groups_read = len(groups)
        if not ids or not groups:
            schema = self._file.schema_arrow
            return schema.empty_table().select(cols) if cols else schema.empty_table()
        wanted = pa.array(ids, pa.string())
        parts = []
        for start in range(0, len(groups), READ_GROUPS):  # a few groups at a time: bounded memory
            table = self._file.read_row_groups(groups[start:start + READ_GROUPS], columns=cols)
            parts.append(table.filter(pc.is_in(table["ImageID"], value_set=wanted)))
        table = pa.concat_tables(parts)
        return table.select(list(columns)) if columns else table

    def count_rows(self) -> int:
        return self._file.metadata.num_rows


def _id_ranges(pf: pq.ParquetFile) -> list[tuple[str | None, str | None]]:
    """(min, max) ImageID of each row group; (None, None) where statistics are missing."""
    col = pf.schema_arrow.get_field_index("ImageID")
    out: list[tuple[str | None, str | None]] = []
    for g in range(pf.num_row_groups):
        stats = pf.metadata.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            out.append((None, None))
        else:
            lo, hi = stats.min, stats.max
            out.append((lo.decode() if isinstance(lo, bytes) else lo, hi.decode() if isinstance(hi, bytes) else hi))
    return out


def _cache_path(csv_path: Path, cache_dir: Path) -> Path:
    digest = hashlib.sha1(str(csv_path.resolve()).encode()).hexdigest()[:12]
    st = csv_path.stat()
    return Path(cache_dir) / "tables" / f"{csv_path.name}-{digest}-{st.st_size}-{st.st_mtime_ns}-v{FORMAT_VERSION}.parquet"


def open_csv_table(csv_path: Path | str, cache_dir: Path | str, required: Sequence[str],
                   *, kind: str = "table", reporter: Reporter = SILENT) -> CsvTable:
    """The Parquet copy of ``csv_path`` (built on first use), after checking its header.

    ``required``: columns that must be present (the error names the missing ones).
    ``reporter``: says when a damaged copy is rebuilt or another run's build waited for.
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
    with locked(Path(cache_dir) / "locks" / f"table-{out.name}.lock", f"the table cache of {csv_path.name}",
                reporter=reporter):
        table, problem = _usable(out)  # another run may have built it while we waited
        if table is not None:
            return table
        if problem:
            reporter.warn(f"The cached table {out} is damaged ({problem}); rebuilding it.")
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
    try:
        reader = pacsv.open_csv(
            csv_path,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False),
        )
        with atomic_path(out) as tmp, tempfile.TemporaryDirectory(prefix=".sort-", dir=out.parent) as work:
            _sorted_copy(reader, Path(work), str(tmp))
    except pa.ArrowInvalid as exc:
        raise MlkitError(f"malformed CSV {csv_path.name}: {exc}") from None
    # drop older copies of the same source file (it changed since they were made)
    prefix = out.name.rsplit("-", 3)[0]
    for old in out.parent.glob(f"{prefix}-*.parquet"):
        if old != out and old.name.rsplit("-", 3)[0] == prefix:
            old.unlink(missing_ok=True)
            _sidecar(old).unlink(missing_ok=True)


def _sorted_copy(reader: pacsv.CSVStreamingReader, work: Path, dest: str) -> None:
    """Write the reader's rows to ``dest`` sorted by ImageID, holding about one range in memory."""
    schema = reader.schema
    runs = work / "runs.parquet"
    samples: list[pa.Array] = []
    total = 0
    with pq.ParquetWriter(str(runs), schema, compression="lz4") as writer:
        for batch in reader:
            if not batch.num_rows:
                continue
            table = pa.Table.from_batches([batch]).sort_by("ImageID")
            writer.write_table(table, row_group_size=RUN_GROUP_ROWS)
            samples.append(table["ImageID"].combine_chunks().take(pa.array(range(0, table.num_rows, 64))))
            total += table.num_rows
    run_file = pq.ParquetFile(str(runs))
    run_ranges = _id_ranges(run_file)
    keys = pc.unique(pa.concat_arrays(samples)).sort().to_pylist() if samples else []
    parts = max(1, -(-total // RANGE_ROWS))
    bounds = sorted({keys[len(keys) * i // parts] for i in range(1, parts)}) if keys else []
    edges: list[str | None] = [None, *bounds, None]
    with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
        if not total:
            writer.write_table(schema.empty_table())
        for lo, hi in zip(edges, edges[1:]):
            groups = [g for g, (a, b) in enumerate(run_ranges)
                      if a is None or ((lo is None or b >= lo) and (hi is None or a < hi))]
            if not groups:
                continue
            table = run_file.read_row_groups(groups)
            ids = table["ImageID"]
            keep = None
            if lo is not None:
                keep = pc.greater_equal(ids, lo)
            if hi is not None:
                below = pc.less(ids, hi)
                keep = below if keep is None else pc.and_(keep, below)
            if keep is not None:
                table = table.filter(keep)
            writer.write_table(table.sort_by("ImageID"), row_group_size=ROW_GROUP_ROWS)
            del table, ids, keep


def clear(cache_dir: Path) -> None:
    shutil.rmtree(Path(cache_dir) / "tables", ignore_errors=True)
