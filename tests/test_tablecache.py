"""Parquet copies of image lists: sorted by ImageID whatever the source order, so lookups prune.

Open Images' image lists are not sorted by ImageID (a third-party check of the real files
found ``4fa8054781a4c382`` before ``d05c3e451f79174d``); the mirror writes them shuffled
too. A copy in file order would have row groups spanning the whole ID range, so their
statistics could prune nothing.
"""

from __future__ import annotations

import csv
import random

import pyarrow.parquet as pq
import pytest

from toolkit.openimages import layout, tablecache
from toolkit.openimages.tablecache import open_csv_table


def write_list(path, ids, extra=()):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Title"])
        for i in ids:
            w.writerow([i, f'Photo "{i}", by me'])
        for row in extra:
            w.writerow(row)


@pytest.fixture
def small_groups(monkeypatch):
    """Row groups and merge ranges small enough that a test file spans many of them."""
    monkeypatch.setattr(tablecache, "ROW_GROUP_ROWS", 256)
    monkeypatch.setattr(tablecache, "RUN_GROUP_ROWS", 128)
    monkeypatch.setattr(tablecache, "RANGE_ROWS", 3000)


@pytest.mark.parametrize("order", ["shuffled", "sorted", "skewed"])
def test_copy_is_sorted_and_lookups_are_exact_and_pruned(tmp_path, small_groups, order):
    rng = random.Random(7)
    if order == "skewed":  # every ID shares its first digits, and duplicates (several boxes per image)
        ids = [f"000000{rng.getrandbits(40):010x}" for _ in range(20_000)]
        ids += ids[:500]
    else:
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(20_000)]
    if order == "sorted":
        ids.sort()
    else:
        rng.shuffle(ids)
    write_list(tmp_path / "list.csv", ids)
    table = open_csv_table(tmp_path / "list.csv", tmp_path / "cache", ["ImageID"])
    stored = pq.read_table(table.parquet)["ImageID"].to_pylist()
    assert stored == sorted(ids)
    assert table.count_rows() == len(ids) and table.row_groups >= len(ids) // 256
    wanted = rng.sample(sorted(set(ids)), 12) + ["ffffffffffffffff"]  # one that is not there
    got = table.rows_for(wanted)
    expected = sorted(i for i in ids if i in set(wanted))
    assert sorted(got["ImageID"].to_pylist()) == expected
    assert got["Title"].to_pylist()[0].startswith('Photo "')
    assert table.row_groups_read <= 13 < table.row_groups, "the statistics pruned nothing"
    assert table.rows_for([]).num_rows == 0 and table.row_groups_read == 0
    assert table.rows_for(wanted, ["Title"]).column_names == ["Title"]


def test_mirror_image_lists_are_unsorted_and_lookups_over_them_are_right(mirror, tmp_path):
    _, info = mirror
    path = info.root / layout.image_list_path("train")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["ImageID"] for r in rows]
    assert ids != sorted(ids), "the mirror's image list is sorted; the real ones are not"
    table = open_csv_table(path, tmp_path / "cache", ["ImageID", "OriginalURL"])
    pick = ids[::17]
    got = {r["ImageID"]: r for r in table.rows_for(pick).to_pylist()}
    assert set(got) == set(pick)
    assert all(got[r["ImageID"]] == r for r in rows if r["ImageID"] in got)
