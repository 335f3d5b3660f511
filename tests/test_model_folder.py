"""What ``train`` and ``export`` do to the folders they write (issue 11): an earlier model is
never replaced unasked (``--overwrite``), and then in one step; read-only outputs are
refused before any work; a full disk while writing ``model.keras`` or the ``.mlmodel`` is a
clear error that leaves nothing half-written, and a rerun works. Full and read-only disks
are real tmpfs mounts (skipped where mount is not allowed), the model a tiny one trained on
the embedded mirror's dataset."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from test_integrity_dataset import tmpfs  # noqa: F401 - the real tmpfs fixture
from test_train import TINY_ARGS, dataset, invoke, small, tiny  # noqa: F401 - fixtures
from toolkit import fsutil
from toolkit.errors import MlkitError
from toolkit.training.train import train


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def weights_of(folder: Path) -> list[np.ndarray]:
    from toolkit.training.model import load_keras_model

    return load_keras_model(folder / "model.keras").get_weights()


@pytest.fixture(scope="module")
def first(small, tmp_path_factory) -> Path:
    """A tiny model trained once, with the files `export` would have added beside it."""
    out = tmp_path_factory.mktemp("first")
    folder = train(tiny(small, out)).path
    (folder / "HotDogClassifier.mlmodel").write_bytes(b"an earlier Core ML export")
    (folder / "hot_dog.tflite").write_bytes(b"an earlier TFLite export")
    (folder / "validation.json").write_text("{}")
    return folder


def _copy_model(first: Path, root: Path) -> Path:
    import shutil

    return Path(shutil.copytree(first, root / "models" / first.name))


# ------------------------------------------------------------------------------ 1: --overwrite

def test_train_refuses_to_replace_an_earlier_model(first, small, tmp_path):
    folder = _copy_model(first, tmp_path)
    before = digest(folder)
    r = invoke("train", small, "--output", folder.parent, *TINY_ARGS)
    text = " ".join(r.stderr.split())
    assert r.exit_code == 2, r.output
    for name in ("model.keras", "HotDogClassifier.mlmodel", "hot_dog.tflite", "validation.json", "--overwrite"):
        assert name in text, name
    assert "Traceback" not in r.output and "Computing backbone features" not in r.output  # refused before work
    assert digest(folder) == before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["hot_dog"]      # no checkpoint started
    r = invoke("train", small, "--output", folder.parent, *TINY_ARGS, "--overwrite")
    assert r.exit_code == 0, r.output
    assert not {"HotDogClassifier.mlmodel", "hot_dog.tflite", "validation.json"} & {p.name for p in folder.iterdir()}


def test_overwrite_replaces_the_whole_folder_in_one_step(first, small, tmp_path, monkeypatch):
    folder = _copy_model(first, tmp_path)
    old = set(digest(folder))
    seen = []
    real = fsutil.exchange

    def watched(a, b):   # what OUTPUT/NAME holds just before and just after the swap
        seen.append(sorted(p.name for p in Path(a).iterdir()))
        real(a, b)
        seen.append(sorted(p.name for p in Path(a).iterdir()))

    monkeypatch.setattr(fsutil, "exchange", watched)
    result = train(tiny(small, folder.parent, overwrite=True))
    new = sorted(p.name for p in folder.iterdir())
    assert seen == [sorted(old), new]
    assert not {"HotDogClassifier.mlmodel", "hot_dog.tflite", "validation.json"} & set(new)  # the old exports
    assert sorted(p.name for p in folder.parent.iterdir()) == ["hot_dog"]                      # nothing staged left
    for a, b in zip(weights_of(first), weights_of(result.path)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)                                    # same seed


def test_overwrite_interrupted_before_the_swap_keeps_the_old_model(first, small, tmp_path, monkeypatch):
    folder = _copy_model(first, tmp_path)
    before = digest(folder)

    def killed(*_a):
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil, "exchange", killed)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(small, folder.parent, overwrite=True))
    assert digest(folder) == before
    assert not [p.name for p in folder.parent.iterdir() if ".partial-" in p.name]


def test_overwrite_never_replaces_a_folder_mlkit_did_not_write(small, tmp_path):
    mine = tmp_path / "models" / "hot_dog"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(MlkitError, match="not a model folder written by `mlkit train`"):
        train(tiny(small, mine.parent, overwrite=True))
    assert (mine / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ 2: read-only outputs

def test_read_only_outputs_are_refused_before_any_work(first, small, tmpfs, tmp_path):  # noqa: F811
    ro = tmpfs("ro", 1 << 20, "ro")
    r = invoke("train", small, "--output", ro / "models", *TINY_ARGS)
    text = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "--output" in text and "not writable" in text and str(ro) in text, r.output
    assert "Computing backbone features" not in r.output and "Traceback" not in r.output

    folder = _copy_model(first, tmp_path)
    r = invoke("export", folder, "--coreml", "--output", ro / "exports")
    text = " ".join(r.stderr.split())
    assert r.exit_code == 2 and "--output" in text and "not writable" in text, r.output
    assert "Converting" not in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------------------ 3: full disks

def test_disk_full_while_writing_model_keras(small, first, tmpfs, tmp_path):  # noqa: F811
    """A tmpfs with room for the checkpoint but not for the finished model: a clear error,
    nothing half-written, and after freeing space the rerun resumes and finishes."""
    room = {}

    def measure(phase, epoch, row):
        ckpt = tmp_path / "ref" / ".hot_dog.checkpoint"
        room["ckpt"] = sum(p.stat().st_size for p in ckpt.iterdir())

    train(tiny(small, tmp_path / "ref"), on_epoch_end=measure)
    keras_bytes = (first / "model.keras").stat().st_size
    disk = tmpfs("full", (room["ckpt"] * 2 + keras_bytes // 2) // 4096 * 4096)
    config = tiny(small, disk / "models")
    with pytest.raises(MlkitError) as exc:
        train(config)
    text = str(exc.value)
    assert "no space left" in text and "needs about" in text and str(disk / "models" / "hot_dog") in text, text
    assert not (disk / "models" / "hot_dog").exists()
    left = [p.name for p in (disk / "models").iterdir()]
    assert left == [".hot_dog.checkpoint"], left                       # only the resumable checkpoint
    assert not [p for p in (disk / "models").rglob("*") if ".part" in p.name]
    tmpfs.remount(disk, f"size={64 << 20}")
    again = train(config)
    assert again.resumed_from is not None
    for a, b in zip(weights_of(first), weights_of(again.path)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_disk_full_while_writing_the_mlmodel(first, tmpfs, tmp_path):  # noqa: F811
    from toolkit.export import ExportOptions, export_model

    disk = tmpfs("full", 256 << 10)   # a Core ML file of this model takes about 2 MB
    out = disk / "HotDogClassifier.mlmodel"
    folder = _copy_model(first, tmp_path)
    with pytest.raises(MlkitError) as exc:
        export_model(folder, ExportOptions(coreml=True, output=out, validate=False))
    text = str(exc.value)
    assert "no space left" in text and "needs about" in text and str(out) in text, text
    assert list(disk.iterdir()) == []                                  # nothing half-written
    tmpfs.remount(disk, f"size={64 << 20}")
    report = export_model(folder, ExportOptions(coreml=True, output=out, samples=4))
    assert report.valid and out.is_file()
    assert json.loads((folder / "validation.json").read_text())["valid"] is True


# ------------------------------------------------------------------------------ validation.json

def test_validation_json_paths_are_relative_and_other_folders_do_not_pile_up(first, tmp_path, monkeypatch):
    """Rows name files relative to the model folder (absolute outside it); validating copies
    in two other folders one after the other leaves only the latest outside row; the same
    file validated from another working directory is one row, not two."""
    import shutil

    from toolkit.export import ExportOptions, export_model
    from toolkit.export.validate import validate

    folder = _copy_model(first, tmp_path)
    (folder / "validation.json").unlink()
    export_model(folder, ExportOptions(tflite=True, samples=4))
    doc = json.loads((folder / "validation.json").read_text())
    assert [r["file"] for r in doc["files"]] == ["hot_dog.tflite"] and doc["keras"]["file"] == "model.keras"

    outside = []
    for name in ("one", "two"):
        copy = tmp_path / name / "hot_dog.tflite"
        copy.parent.mkdir()
        shutil.copy(folder / "hot_dog.tflite", copy)
        validate(copy, against=folder / "model.keras", samples=4)
        outside.append(copy)
    rows = [r["file"] for r in json.loads((folder / "validation.json").read_text())["files"]]
    assert rows == ["hot_dog.tflite", str(outside[1].resolve())]

    monkeypatch.chdir(tmp_path)
    validate(Path("models/hot_dog/hot_dog.tflite"), samples=4)
    moved = Path(shutil.move(str(folder), str(tmp_path / "moved")))     # the record travels with the folder
    rows = [r["file"] for r in json.loads((moved / "validation.json").read_text())["files"]]
    assert rows == ["hot_dog.tflite"]
