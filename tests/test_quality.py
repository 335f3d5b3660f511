"""``mlkit train --quality best``: its augmentation, its schedule, its preset, and a tiny
run (MobileNetV2 alpha 0.35, 96 px, random weights) that trains, is interrupted during
fine-tuning, resumes, saves, and exports. Whether ``best`` is better is the benchmark's
question (bench/bench_quality.py), not a test's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers_datasets import copy_subset
from toolkit.training import finetune
from toolkit.training.augment import strong_augmentation
from toolkit.cli import app
from toolkit.errors import MlkitError
from toolkit.progress import Reporter
from toolkit.training.train import TrainConfig, train

TINY = dict(alpha=0.35, image_size=96, weights="none", epochs=1, batch_size=8)


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def small(mirror_dataset, tmp_path_factory) -> Path:
    """The mirror dataset with 8 train, 3 val and 3 test images per class."""
    return copy_subset(mirror_dataset, tmp_path_factory.mktemp("q"), {"train": 8, "val": 3, "test": 3})


def test_strong_augmentation_changes_images_reproducibly():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 64, 64, 3)).astype(np.float32)
    a = np.asarray(strong_augmentation(64, seed=3)(x, training=True))
    b = np.asarray(strong_augmentation(64, seed=3)(x, training=True))
    c = np.asarray(strong_augmentation(64, seed=4)(x, training=True))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255
    assert np.abs(a - x).mean() > 5            # crops, flips and jitter moved pixels
    np.testing.assert_allclose(a, b, atol=1e-4)  # same seed, same augmentation
    assert np.abs(a - c).mean() > 1
    np.testing.assert_array_equal(np.asarray(strong_augmentation(64)(x, training=False)), x)


def test_the_crop_keeps_part_of_the_picture():
    """A left-dark / right-bright image: each crop shows a part of it, resized to full size."""
    from toolkit.training.augment import random_resized_crop

    x = np.zeros((16, 32, 32, 3), np.float32)
    x[:, :, 16:] = 255
    y = np.asarray(random_resized_crop(32, seed=1)(x, training=True))
    assert y.shape == x.shape
    means = y.mean(axis=(1, 2, 3))
    assert (means > 0).any() and (means < 255).any() and len(np.unique(np.round(means))) > 4


def test_best_uses_a_warmed_up_cosine_schedule():
    cfg = finetune.with_quality(TrainConfig(Path("x"), quality="best"))
    lr = finetune.learning_rate(cfg, "fine_tune", steps_per_epoch=10, epochs=5)
    peak = cfg.fine_tune_learning_rate
    at = [float(lr(s)) for s in (0, 5, 10, 30, 50)]
    assert at[0] == pytest.approx(peak * finetune.FINAL_LR_FRACTION)
    assert at[0] < at[1] < at[2] == pytest.approx(peak)        # linear warm-up over the first epoch
    assert at[2] > at[3] > at[4] == pytest.approx(peak * finetune.FINAL_LR_FRACTION, rel=1e-3)
    assert finetune.learning_rate(cfg, "head", 10, 5) == cfg.learning_rate          # the head: constant
    fast = TrainConfig(Path("x"), fine_tune_layers=10)
    assert finetune.learning_rate(fast, "fine_tune", 10, 5) == fast.fine_tune_learning_rate


def test_best_fills_in_only_what_the_caller_left_alone():
    cfg = finetune.with_quality(TrainConfig(Path("x"), quality="best", fine_tune_epochs=3))
    assert cfg.fine_tune_epochs == 3                              # given: kept
    assert cfg.fine_tune_layers == finetune.WHOLE_BACKBONE
    assert cfg.fine_tune_learning_rate == finetune.BEST_PRESET["fine_tune_learning_rate"]
    assert cfg.fine_tunes and cfg.use_fast_path                   # warm-up head on cached features
    assert finetune.with_quality(TrainConfig(Path("x"))) == TrainConfig(Path("x"))
    with pytest.raises(MlkitError, match="unknown --quality 'turbo'"):
        TrainConfig(Path("x"), quality="turbo").validate()


def test_unknown_quality_exits_2(tmp_path):
    r = invoke("train", tmp_path, "--quality", "turbo")
    assert r.exit_code == 2 and "unknown --quality" in r.output


def test_best_trains_resumes_saves_and_exports(small, tmp_path):
    import keras

    def stop(phase, epoch, row):
        if phase == "fine_tune" and epoch == 1:
            raise KeyboardInterrupt

    config = TrainConfig(small, output_dir=tmp_path, quality="best", fine_tune_epochs=2, patience=5, **TINY)
    logs: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        train(config, reporter=Reporter(logs.append), on_epoch_end=stop)
    assert any("--quality best" in m and "cosine" in m for m in logs)
    ckpt = tmp_path / ".hot_dog.checkpoint"
    state = json.loads((ckpt / "state.json").read_text())
    saved = keras.saving.load_model(ckpt / state["phases"]["fine_tune"]["model_file"], compile=True)
    assert isinstance(saved.optimizer.learning_rate, keras.optimizers.schedules.CosineDecay) or \
        type(saved.optimizer._learning_rate).__name__ == "CosineDecay"   # the schedule is checkpointed too
    assert not (tmp_path / "hot_dog").exists()

    result = train(config)
    assert result.resumed_from == "fine_tune epoch 1"
    assert [(h["phase"], h["epoch"]) for h in result.history] == [("head", 1), ("fine_tune", 1), ("fine_tune", 2)]
    settings = json.loads((result.path / "training.json").read_text())["settings"]
    assert settings["quality"] == "best" and settings["fine_tune_layers"] == finetune.WHOLE_BACKBONE
    assert settings["fine_tune_learning_rate"] == finetune.BEST_PRESET["fine_tune_learning_rate"]
    model = keras.saving.load_model(result.path / "model.keras")
    names = [layer.name for layer in model.layers]
    assert not any("augmentation" in n or "crop" in n for n in names)   # training only
    backbone = model.get_layer("mobilenet_v2")
    assert not any(layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    with_weights = [layer for layer in backbone.layers
                    if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.trainable for layer in with_weights)                # the whole backbone was fine-tuned
    for f in ("model.keras", "labels.txt", "model.json", "training.json", "learning_curves.png"):
        assert (result.path / f).is_file()

    r = invoke("export", result.path, "--tflite", "--samples", "4", "--json")
    assert r.exit_code == 0, r.output
    assert list(result.path.glob("*.tflite"))
