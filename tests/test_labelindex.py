"""The columnar label index: every answer checked against a plain pandas reading."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit.errors import MlkitError
from toolkit.openimages import labelbuild, labelparse
from toolkit.openimages.labelindex import (hex_array_to_ids, hex_to_id, ids_to_hex, index_dir_for,
                                           open_label_index)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from synth_labels import write as write_synthetic  # noqa: E402

HOT_DOG = "/m/01b9xk"


def _truth(csv: Path) -> pd.DataFrame:
    return pd.read_csv(csv, dtype={"ImageID": str, "LabelName": str, "Confidence": float})


def _expected(df: pd.DataFrame, mids: list[str], conf: float | None) -> list[str]:
    m = df.LabelName.isin(mids)
    if conf is not None:
        m &= df.Confidence == conf
    return sorted(df.loc[m, "ImageID"].unique())


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    write_synthetic(path, 300_000, seed=3, plant={HOT_DOG: 3_000}, n_classes=500, chunk=70_000)
    return path


def test_matches_pandas_on_synthetic_file(synthetic: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(labelbuild, "CHUNK_BYTES", 1 << 20)  # many chunks: rows of an image straddle them
    index = open_label_index(synthetic, tmp_path)
    df = _truth(synthetic)
    assert index.rows == len(df)
    assert ids_to_hex(index.images) == sorted(df.ImageID.unique())
    for mids in ([HOT_DOG], [HOT_DOG, df.LabelName.iloc[5]], ["/m/not-there"]):
        for conf in (1, 0, None):
            assert ids_to_hex(index.images_with(mids, conf)) == _expected(df, mids, conf)
    counts = index.counts()
    truth = df[df.Confidence == 1].groupby("LabelName").size()
    assert counts == {k: int(v) for k, v in truth.items()}


def test_images_with_each_answers_every_group_in_one_pass(synthetic: Path, tmp_path: Path) -> None:
    index = open_label_index(synthetic, tmp_path)
    df = _truth(synthetic)
    common = list(df.LabelName.value_counts().index[:12])
    groups = [[HOT_DOG], common[:3], [common[2], common[7]], ["/m/not-there"], [HOT_DOG, *common[:9]]]
    for conf in (1, 0, None):
        got = index.images_with_each(groups, conf)
        assert [ids_to_hex(g) for g in got] == [_expected(df, g, conf) for g in groups]
    many = [[m] for m in common] * 6  # 72 groups: more than one 64-bit mask holds
    assert [ids_to_hex(g) for g in index.images_with_each(many)] == [_expected(df, g, 1) for g in many]


def test_second_open_reuses_the_index_and_a_changed_file_rebuilds(synthetic: Path, tmp_path: Path) -> None:
    first = open_label_index(synthetic, tmp_path)
    meta = index_dir_for(synthetic, tmp_path) / "meta.json"
    stamp = meta.stat().st_mtime_ns
    again = open_label_index(synthetic, tmp_path)
    assert meta.stat().st_mtime_ns == stamp and again.rows == first.rows
    changed = tmp_path / "changed.csv"
    changed.write_bytes(synthetic.read_bytes())
    idx = open_label_index(changed, tmp_path)
    with open(changed, "a") as f:
        f.write("ffffffffffffffff,verification,/m/new,1\n")
    os.utime(changed, ns=(stamp + 10**9, stamp + 10**9))
    rebuilt = open_label_index(changed, tmp_path)
    assert rebuilt.rows == idx.rows + 1
    assert ids_to_hex(rebuilt.images_with(["/m/new"])) == ["ffffffffffffffff"]


CANONICAL = """ImageID,Source,LabelName,Confidence
000002b66c9c498e,verification,/m/014j1m,0
000002b66c9c498e,crowdsource-verification,/m/01b9xk,1
000002b66c9c498e,verification,/m/0l515,1
000002b97e5471a0,verification,/m/01b9xk,0
0000048549557964,machine-bogus,/g/11bc6fb5rn,1
fedcba9876543210,verification,/m/0k4j,1
"""


@pytest.mark.parametrize("variant", ["canonical", "crlf", "no-header", "no-final-newline", "floats",
                                     "quoted", "reordered"])
def test_layout_variants_give_the_same_answers(variant: str, tmp_path: Path) -> None:
    text = CANONICAL
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "no-header":
        text = text.split("\n", 1)[1]
    elif variant == "no-final-newline":
        text = text.rstrip("\n")
    elif variant == "floats":  # machine-label style scores go through the general path
        text = text.replace(",1\n", ",1.0\n").replace(",0\n", ",0.0\n")
    elif variant == "quoted":
        text = "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in text.splitlines()) + "\n"
    elif variant == "reordered":
        rows = [line.split(",") for line in text.splitlines()]
        text = "\n".join(",".join([r[2], r[0], r[3], r[1]]) for r in rows) + "\n"
    path = tmp_path / "labels.csv"
    path.write_text(text)
    index = open_label_index(path, tmp_path / "cache")
    assert index.rows == 6
    assert ids_to_hex(index.images_with([HOT_DOG], 1)) == ["000002b66c9c498e"]
    assert ids_to_hex(index.images_with([HOT_DOG], 0)) == ["000002b97e5471a0"]
    assert ids_to_hex(index.images_with(["/g/11bc6fb5rn"], 1)) == ["0000048549557964"]
    assert index.images.size == 4
    assert index.counts()["/m/0k4j"] == 1


def test_machine_scores_are_kept_to_the_percent(tmp_path: Path) -> None:
    path = tmp_path / "machine.csv"
    path.write_text("ImageID,Source,LabelName,Confidence\n"
                    "0000000000000001,machine,/m/01b9xk,0.7\n0000000000000002,machine,/m/01b9xk,1\n")
    index = open_label_index(path, tmp_path)
    assert ids_to_hex(index.images_with([HOT_DOG], 0.7)) == ["0000000000000001"]
    assert ids_to_hex(index.images_with([HOT_DOG], 1)) == ["0000000000000002"]


@pytest.mark.parametrize("text, message", [
    ("ImageID,Source,Confidence\n000002b66c9c498e,verification,1\n", "missing column"),
    ("hello world\n", "does not look like an Open Images labels file"),
    ("ImageID,Source,LabelName,Confidence\nnot-an-id,verification,/m/01b9xk,1\n", "ImageID"),
    ("ImageID,Source,LabelName,Confidence\n000002b66c9c498e,verification,/m/01b9xk,maybe\n", "Confidence"),
    ("ImageID,Source,LabelName,Confidence\n000002b66c9c498e,verification,/m/01b9xk,1,extra\n", "malformed"),
])
def test_malformed_files_give_clear_errors_and_leave_no_index(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MlkitError, match=message):
        open_label_index(path, tmp_path / "cache")
    index_root = tmp_path / "cache" / "index"
    assert not index_root.exists() or not any(index_root.iterdir())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MlkitError, match="not found"):
        open_label_index(tmp_path / "nope.csv", tmp_path)


def test_hex_round_trip() -> None:
    ids = ["0000000000000000", "ffffffffffffffff", "0123456789abcdef", "8000000000000001"]
    arr = hex_array_to_ids(ids)
    assert arr.dtype == np.uint64 and ids_to_hex(arr) == ids
    assert hex_to_id("00000000000000ff") == 255
    with pytest.raises(ValueError):
        hex_to_id("abc")


def test_fast_parser_decodes_every_hex_digit() -> None:
    # all 16 digits in every position, upper and lower case
    lines = []
    for shift in range(16):
        digits = "0123456789abcdef"[shift:] + "0123456789abcdef"[:shift]
        lines.append(f"{digits},verification,/m/0k4j,1\n")
        lines.append(f"{digits.upper()},verification,/m/0k4j,0\n")
    chunk = labelparse.parse_fast("".join(lines).encode())
    assert chunk is not None
    got = chunk.run_ids[chunk.run_of_row]
    assert [f"{int(v):016x}" for v in got] == [line[:16].lower() for line in lines]


def test_rows_in_any_order_give_the_same_answers(synthetic: Path, tmp_path: Path) -> None:
    lines = synthetic.read_text().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    rng = np.random.default_rng(1)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(header + "".join(body[i] for i in rng.permutation(len(body))))
    index = open_label_index(shuffled, tmp_path)
    assert not index.sorted_runs
    df = _truth(shuffled)
    assert ids_to_hex(index.images) == sorted(df.ImageID.unique())
    for conf in (1, 0):
        assert ids_to_hex(index.images_with([HOT_DOG], conf)) == _expected(df, [HOT_DOG], conf)
