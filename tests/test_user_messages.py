"""Messages that misled users (issue 11), each now saying what happened and what to do: a
damaged model.keras, predict on a folder and on a file that is not an image, and Ctrl-C
during training (what was really kept). Real Keras models and images; the Ctrl-C is a
KeyboardInterrupt raised from inside the real training loop."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from helpers_models import save_untrained_model
from test_train import TINY_ARGS, dataset, invoke, small  # noqa: F401 - fixtures
from toolkit.training.run import Run
from toolkit.errors import MlkitError
from toolkit.runtimes.predict import predict

LABELS = ["hot_dog", "not_hot_dog"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """models/<name>/ as train writes it (a tiny untrained model: the messages are under test)."""
    return save_untrained_model(tmp_path_factory.mktemp("models") / "hot_dog", LABELS)


def _photo(path: Path, fmt: str = "JPEG", colour=(200, 80, 40)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), colour).save(path, format=fmt)
    return path


# ------------------------------------------------------------------------------ damaged model.keras

@pytest.mark.parametrize("damage, words", [
    (lambda b: b[:len(b) // 2], "truncated"),                          # a copy cut short
    (lambda b: b[:1000] + bytes(100) + b[1100:], "damaged"),           # bytes garbled inside the zip
], ids=["truncated", "garbled"])
def test_a_damaged_model_keras_says_so_and_how_to_fix_it(model_dir, tmp_path, damage, words):
    folder = Path(shutil.copytree(model_dir, tmp_path / "hot_dog"))
    keras_file = folder / "model.keras"
    keras_file.write_bytes(damage(keras_file.read_bytes()))
    image = _photo(tmp_path / "a.jpg")
    with pytest.raises(MlkitError) as exc:
        predict(folder, [image])
    text = str(exc.value)
    assert words in text and "train the model again" in text and "--overwrite" in text, text
    assert "not found" not in text.lower()
    r = invoke("predict", folder, image)
    assert r.exit_code == 2 and "Traceback" not in r.output and "cannot load it" in " ".join(r.stderr.split())


# ------------------------------------------------------------------------------ predict on a folder

def test_predict_on_a_folder_predicts_every_image_in_it(model_dir, tmp_path):
    photos = tmp_path / "photos"
    expected = [_photo(photos / "a.jpg"), _photo(photos / "b.PNG", "PNG"), _photo(photos / "more" / "c.bmp", "BMP")]
    (photos / "notes.txt").write_text("not an image, and not asked for")
    _photo(photos / ".thumbs" / "hidden.jpg")
    preds = predict(model_dir, [photos])
    assert [p.path for p in preds] == sorted(expected)
    r = invoke("predict", model_dir, photos, expected[0], "--json")
    assert r.exit_code == 0, r.output
    assert [p["path"] for p in json.loads(r.stdout)] == [str(p) for p in sorted(expected)] + [str(expected[0])]

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    r = invoke("predict", model_dir, empty)
    text = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "is a folder with no JPEG, PNG, BMP or GIF images" in text, r.output
    assert "no such image file" not in text


# ------------------------------------------------------------------------------ predict on a non-image

def test_predict_on_a_file_that_is_not_an_image_says_so(model_dir, tmp_path):
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.7 not an image")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(_photo(tmp_path / "whole.jpg").read_bytes()[:200])   # a JPEG header, then nothing
    for bad, words in ((doc, "not a JPEG, PNG, BMP or GIF file"), (cut, "cut.jpg")):
        r = invoke("predict", model_dir, bad)
        text = " ".join(r.stderr.split())
        assert r.exit_code == 2 and words in text and "mlkit reads JPEG, PNG, BMP and GIF images" in text, r.output
        assert "build-dataset" not in text and "Traceback" not in r.output


# ------------------------------------------------------------------------------ Ctrl-C while training

def _ctrl_c_at(monkeypatch, where):
    """Raise KeyboardInterrupt (what Ctrl-C raises) from inside training at ``where``:
    ("batch", n) on the n-th progress step (feature batches, then training steps), or
    ("epoch", n) when the n-th epoch's line is shown (after its checkpoint)."""
    kind, n = where
    calls = {"batch": 0, "epoch": 0}
    name = "advance" if kind == "batch" else "show_epoch"
    real = getattr(Run, name)

    def hooked(self, *a):
        calls[kind] += 1
        if calls[kind] == n:
            raise KeyboardInterrupt
        return real(self, *a)

    monkeypatch.setattr(Run, name, hooked)


def test_ctrl_c_says_truthfully_what_was_kept(small, tmp_path, monkeypatch):
    ds = json.loads((small / "dataset.json").read_text())
    images = sum(sum(c.values()) for c in ds["counts"].values())
    feature_batches = math.ceil(images / 8)          # --batch-size 8 in TINY_ARGS
    out = tmp_path / "models"
    cases = [
        (("batch", 2), "Interrupted before anything could be kept"),                 # during feature extraction
        (("batch", feature_batches + 1), "The backbone features are kept"),          # during head epoch 1
        (("epoch", 1), "checkpointed up to head epoch 1"),                            # after epoch 1's checkpoint
    ]
    for where, words in cases:
        with monkeypatch.context() as m:
            _ctrl_c_at(m, where)
            r = invoke("train", small, "--output", out, *TINY_ARGS)
        text = " ".join(r.stderr.split())
        assert r.exit_code == 130 and words in text, (where, r.output)
        assert "Traceback" not in r.output
        if where[0] == "batch" and where[1] == 2:
            assert "checkpointed" not in text and not (out / ".hot_dog.checkpoint" / "state.json").exists()
    r = invoke("train", small, "--output", out, *TINY_ARGS)
    assert r.exit_code == 0 and "Computing backbone features" not in r.output, r.output


# ------------------------------------------------------------------------------ where images came from

def test_build_summary_says_how_many_images_fell_back_from_the_cvdf_mirror(mirror_config):
    """The mirror's CVDF copy lacks some images; they come from Flickr (thumbnail or
    original), manifest.csv says which for each, and the summary counts them (the CVDF
    source itself answered, so it is not blamed)."""
    import csv

    from toolkit.dataset.build import build_dataset

    result = build_dataset(mirror_config(max_size=32))
    with open(result.path / "manifest.csv", newline="", encoding="utf-8") as f:
        kinds = [r["source_kind"] for r in csv.DictReader(f) if r["status"] == "ok"]
    flickr = sum(k in ("thumbnail", "original") for k in kinds)
    assert 0 < flickr < len(kinds) and set(kinds) <= {"cvdf", "thumbnail", "original"}
    (note,) = [n for n in result.notes if "came from Flickr" in n]
    assert note.startswith(f"{flickr} of {len(kinds)} images came from Flickr") and "--image-source" not in note
