"""``mlkit review`` and ``--exclude``.

The ranking test runs the real thing: 40 + 40 real seefood photos (../shared/data, skipped
where absent) with four labels deliberately swapped, the real ImageNet MobileNetV2
features, cleanlab's ranking; the swapped photos must come out on top. The exclusion
tests use placeholder files (only names matter to the split lists) and, once, a tiny
training run.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import shared_path
from toolkit.cli import app
from toolkit.training.data import read_dataset, split_files
from toolkit.errors import MlkitError
from toolkit.training.review import exclude_from_splits, read_exclusions

CLASSES = ("hot_dog", "not_hot_dog")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _dataset(root: Path, files: dict[str, dict[str, list[Path | str]]]) -> Path:
    """A dataset folder: split -> class -> source files (copied) or names (placeholders)."""
    counts = {c: {s: 0 for s in ("train", "val", "test")} for c in CLASSES}
    for split, by_class in files.items():
        for cls, items in by_class.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for item in items:
                if isinstance(item, Path):
                    shutil.copy(item, root / split / cls / item.name)
                else:
                    (root / split / cls / item).write_bytes(b"\xff\xd8\xff placeholder")
                counts[cls][split] += 1
    doc = {"format": 1, "name": root.name, "classes": list(CLASSES), "counts": counts,
           "class_weights": {c: 1.0 for c in CLASSES}, "balance": {"mode": "none", "repeat": {c: 1 for c in CLASSES}},
           "content_hash": "test-" + root.name, "positive": {"folder": "hot_dog"}}
    (root / "dataset.json").write_text(json.dumps(doc))
    return root


# ------------------------------------------------------------------------------ --exclude

@pytest.fixture
def names(tmp_path) -> Path:
    ids = {c: [f"{k:016x}" for k in range(i * 100, i * 100 + 6)] for i, c in enumerate(CLASSES)}
    return _dataset(tmp_path / "ds", {
        "train": {c: [f"{x}.jpg" for x in ids[c][:4]] for c in CLASSES},
        "val": {c: [f"{ids[c][4]}.jpg"] for c in CLASSES},
        "test": {c: [f"{ids[c][5]}.jpg"] for c in CLASSES}})


def _splits(ds: Path):
    info = read_dataset(ds)
    return info, split_files(info, "train"), split_files(info, "val")


def test_exclusion_matches_image_ids_file_names_and_paths(names, tmp_path):
    info, train, val = _splits(names)
    listing = tmp_path / "bad.txt"
    listing.write_text("# checked by hand\n0000000000000000\n\n0000000000000065.jpg\nval/hot_dog/0000000000000004.jpg\n"
                       "not-in-this-dataset\n")
    new_train, new_val, ex = exclude_from_splits(listing, info, train, val)
    assert ex.excluded == ["train/hot_dog/0000000000000000.jpg", "train/not_hot_dog/0000000000000065.jpg",
                           "val/hot_dog/0000000000000004.jpg"]
    assert len(new_train) == len(train) - 2 and len(new_val) == len(val) - 1
    assert not set(new_train.paths) & {names / e for e in ex.excluded}
    assert ex.unmatched == ["not-in-this-dataset"] and "1 entry matched none" in ex.note
    # the labels still belong to their files
    assert [p.parent.name for p in new_train.paths] == [CLASSES[i] for i in new_train.labels]


def test_exclusion_reads_review_csv(names, tmp_path):
    info, train, val = _splits(names)
    f = tmp_path / "review.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "file", "image_id", "split", "given_label", "predicted_label", "confidence"])
        w.writerow([1, "train/not_hot_dog/0000000000000066.jpg", "0000000000000066", "train", "not_hot_dog",
                    "hot_dog", 0.9])
    assert read_exclusions(f) == ["train/not_hot_dog/0000000000000066.jpg"]
    new_train, _, ex = exclude_from_splits(f, info, train, val)
    assert len(new_train) == len(train) - 1 and ex.excluded == ["train/not_hot_dog/0000000000000066.jpg"]


@pytest.mark.parametrize("text, words", [
    ("nothing\nmatches\n", "none of its 2 entries"),
    ("0000000000000000\n0000000000000001\n0000000000000002\n0000000000000003\n", "no training image of class hot_dog"),
    ("0000000000000004\n0000000000000068\n", "leaves the val split empty"),
])
def test_exclusion_mistakes_are_clear_errors(names, tmp_path, text, words):
    info, train, val = _splits(names)
    f = tmp_path / "x.txt"
    f.write_text(text)
    with pytest.raises(MlkitError, match=words):
        exclude_from_splits(f, info, train, val)
    with pytest.raises(MlkitError, match="no such file"):
        exclude_from_splits(tmp_path / "missing.csv", info, train, val)


def test_train_exclude_leaves_images_out(mirror_dataset, tmp_path):
    """A tiny real training run: the excluded images are neither trained on nor validated on."""
    from toolkit.training.train import TrainConfig, train

    info = read_dataset(mirror_dataset)
    train_files, val_files = split_files(info, "train"), split_files(info, "val")
    gone = [train_files.paths[0], train_files.paths[-1], val_files.paths[0]]
    listing = tmp_path / "exclude.txt"
    listing.write_text("\n".join(p.stem for p in gone) + "\n")
    cfg = dict(dataset_dir=mirror_dataset, output_dir=tmp_path / "m", alpha=0.35, image_size=96, weights="none",
               epochs=1, batch_size=8)
    base = train(TrainConfig(**cfg, name="all"))
    result = train(TrainConfig(**cfg, name="excl", exclude=listing))
    assert result.timings["features_images"] == base.timings["features_images"] - 3
    doc = json.loads((result.path / "training.json").read_text())
    assert any("3 train/val image(s) left out" in n for n in doc["notes"]), doc["notes"]
    assert doc["settings"]["exclude"] == str(listing)
    assert result.evaluation.n == base.evaluation.n   # the test split is never filtered


# ------------------------------------------------------------------------------ review

@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    """40 + 40 real photos (the first by name), two of each class filed under the other:
    (dataset, swapped files). The first 40 hot dogs include a portrait."""
    photos = shared_path("seefood", "train")
    shared_path("keras", "models")
    pick = {c: sorted((photos / c).glob("*.jpg"))[:40] for c in CLASSES}
    # evenly spread picks, not the first files: sorted names are not random but are not chosen by content
    moved = {c: [pick[c][7], pick[c][29]] for c in CLASSES}
    files: dict = {"train": {c: [] for c in CLASSES}, "val": {c: [] for c in CLASSES}}
    for i, c in enumerate(CLASSES):
        other = CLASSES[1 - i]
        for k, p in enumerate(pick[c]):
            dest = other if p in moved[c] else c
            files["val" if k % 8 == 0 else "train"][dest].append(p)
    ds = _dataset(tmp_path_factory.mktemp("swapped") / "seefood80", files)
    return ds, sorted(p.name for c in CLASSES for p in moved[c])


def test_review_ranks_swapped_labels_first(swapped, tmp_path, monkeypatch):
    ds, moved = swapped
    monkeypatch.setenv("KERAS_HOME", str(shared_path("keras")))
    out = tmp_path / "review"
    r = invoke("review", ds, "--output", out, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["images"] == 80 and doc["flagged"] == len(doc["rows"])
    top = [Path(row["file"]).name for row in doc["rows"][:8]]
    assert set(moved) <= set(top), (moved, top)
    for row in doc["rows"]:
        if Path(row["file"]).name in moved:
            assert row["flagged"] and row["predicted_label"] != row["given_label"]
            assert row["given_label_probability"] < 0.5 and row["confidence"] > 0.5
    # a real oddity of the shared photos: a portrait filed as hot dog (seefood/train/hot_dog/1114633.jpg)
    portrait = [row for row in doc["rows"] if row["file"].endswith("hot_dog/1114633.jpg")]
    assert portrait and portrait[0]["predicted_label"] == "not_hot_dog", [row["file"] for row in doc["rows"]]
    with (out / "review.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == [row["file"] for row in doc["rows"]]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert (out / "review.png").read_bytes().startswith(PNG_MAGIC)
    # the CSV as written is a valid --exclude file for this dataset
    info = read_dataset(ds)
    new_train, new_val, ex = exclude_from_splits(out / "review.csv", info, split_files(info, "train"),
                                                 split_files(info, "val"))
    assert len(ex.excluded) == len(rows) and not ex.unmatched


def test_review_top_continues_down_the_ranking(swapped, tmp_path, monkeypatch):
    ds, _ = swapped
    monkeypatch.setenv("KERAS_HOME", str(shared_path("keras")))
    r = invoke("review", ds, "--output", tmp_path, "--top", "30", "--json", "--folds", "4")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    rows = doc["rows"]
    assert len(rows) == 30 and doc["folds"] == 4
    flags = [row["flagged"] for row in rows]
    assert flags == sorted(flags, reverse=True) and sum(flags) == doc["flagged"] < 30
    unflagged = [row["given_label_probability"] for row in rows if not row["flagged"]]
    assert unflagged == sorted(unflagged)   # lowest probability of the given label first


@pytest.mark.parametrize("extra, words", [(("--folds", "1"), "--folds must be at least 2"),
                                          (("--top", "0"), "--top must be at least 1"),
                                          (("--folds", "9"), "at least --folds (9)")])
def test_review_bad_input_exits_2(names, tmp_path, extra, words):
    r = invoke("review", names, "--output", tmp_path / "o", "--weights", "none", "--image-size", "96", *extra)
    assert r.exit_code == 2, r.output
    assert words in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()


def test_review_of_a_missing_dataset_exits_2(tmp_path):
    r = invoke("review", tmp_path / "nope")
    assert r.exit_code == 2 and "no dataset folder" in r.output
