"""A training run killed and resumed ends with the weights of an uninterrupted run with the
same seed (issue 11): the checkpoint holds the optimizer state, the early-stopping state
(best value, wait count, best weights), and each epoch's batch order depends only on the
seed and the epoch number. On the embedded mirror's dataset, tiny model, real Keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from test_train import dataset, small, tiny  # noqa: F401 - fixtures
from toolkit.training.train import train

ROOT = Path(__file__).resolve().parent.parent
EXACT = dict(rtol=0, atol=1e-7)    # float32 weights; what differs between runs is summation noise (~1e-10)


def weights_of(folder: Path) -> list[np.ndarray]:
    from toolkit.training.model import load_keras_model

    return load_keras_model(folder / "model.keras").get_weights()


def assert_same_model(a, b) -> None:
    assert [(h["phase"], h["epoch"]) for h in a.history] == [(h["phase"], h["epoch"]) for h in b.history]
    # history rows are rounded to 6 decimals: equal values may round one step apart
    assert [h["val_loss"] for h in a.history] == pytest.approx([h["val_loss"] for h in b.history], abs=2.5e-6)
    pa, pb = a.card.training["phases"], b.card.training["phases"]
    assert {k: {**v, "best_val_loss": None} for k, v in pa.items()} == \
        {k: {**v, "best_val_loss": None} for k, v in pb.items()}                 # epochs, best epoch, early stop
    for phase in pa:
        assert pa[phase]["best_val_loss"] == pytest.approx(pb[phase]["best_val_loss"], rel=1e-7)
    wa, wb = weights_of(a.path), weights_of(b.path)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, **EXACT)


def test_head_killed_mid_patience_resumes_to_the_same_weights(small, tmp_path):
    """Fast path (head on cached features), early stopping with patience 2 (a high learning
    rate makes the validation loss turn up): the process is killed (os._exit, like kill -9)
    right after the checkpoint of the epoch before the one that stops the run, with one
    epoch of patience used, and rerun."""
    kw = dict(epochs=15, patience=2, learning_rate=0.3)
    whole = train(tiny(small, tmp_path / "whole", **kw))
    phase = whole.card.training["phases"]["head"]
    assert phase["stopped_early"] and phase["epochs"] == phase["best_epoch"] + 2 > 3   # the case under test
    kill_at = phase["epochs"] - 1

    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from toolkit.training.train import TrainConfig, train

        def kill(phase, epoch, row):
            if epoch == {kill_at}:
                os._exit(9)

        train(TrainConfig(dataset_dir=Path({str(small)!r}), output_dir=Path({str(out)!r}), alpha=0.35,
                          image_size=96, weights="none", batch_size=8, epochs=15, patience=2,
                          learning_rate=0.3), on_epoch_end=kill)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 9, done.stderr[-2000:]
    state = json.loads((out / ".hot_dog.checkpoint" / "state.json").read_text())
    assert state["phases"]["head"]["epoch"] == kill_at and state["phases"]["head"]["wait"] == 1

    resumed = train(tiny(small, out, **kw))
    assert resumed.resumed_from == f"head epoch {kill_at}"
    assert_same_model(whole, resumed)


def test_augmented_head_and_fine_tuning_resume_to_the_same_weights(small, tmp_path):
    """Images through the backbone every epoch, with augmentation, then fine-tuning;
    interrupted (KeyboardInterrupt from the epoch hook) in the head phase, then again in
    fine-tuning, and resumed each time."""
    kw = dict(augment=True, epochs=3, fine_tune_layers=6, fine_tune_epochs=3, patience=5)
    whole = train(tiny(small, tmp_path / "whole", **kw))

    stops = {("head", 2), ("fine_tune", 1)}

    def interrupt(phase, epoch, row):
        if (phase, epoch) in stops:
            stops.discard((phase, epoch))
            raise KeyboardInterrupt

    out = tmp_path / "interrupted"
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train(tiny(small, out, **kw), on_epoch_end=interrupt)
    resumed = train(tiny(small, out, **kw), on_epoch_end=interrupt)
    assert resumed.resumed_from == "fine_tune epoch 1"
    assert_same_model(whole, resumed)
