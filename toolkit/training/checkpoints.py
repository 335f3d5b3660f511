"""The resumable state of a ``train`` run: ``<output>/.<name>.checkpoint/``.

After every epoch the run's state (per phase: epoch reached, early-stopping state, the
best weights, the model with its optimizer state; the history; the cached backbone
features) is written there atomically. A run with the same fingerprint (the settings that
shape what is computed, the dataset's content, the toolkit's version) resumes from it;
with another one it is set aside. ``interrupted_message`` says what an interrupted run
kept, from what is on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..errors import MlkitError
from ..fsutil import atomic_write_bytes, atomic_write_text
from .data import DatasetInfo
from .model import BACKBONE_LAYER, save_keras

# Settings that change what a run computes; a checkpoint made with others is not resumed.
# (epochs, fine_tune_epochs and patience may change: a resumed run can train longer.)
SHAPING = ("alpha", "image_size", "weights", "dropout", "l2", "resize_mode", "batch_size", "learning_rate",
           "fine_tune_learning_rate", "fine_tune_layers", "seed", "augment", "fast", "strategy", "quality",
           "exclude")


class Checkpoints:
    """``<output>/.<name>.checkpoint/``: state.json plus the files it names. Every file
    is written atomically before state.json names it; files it no longer names are
    removed after. A kill at any moment leaves a consistent, resumable checkpoint."""

    def __init__(self, folder: Path, fingerprint: str, enabled: bool = True):
        self.folder, self.fingerprint, self.enabled = folder, fingerprint, enabled
        self.state: dict[str, Any] = {"fingerprint": fingerprint, "phases": {}, "history": []}

    def open(self, resume: bool | None, settings: dict, say: Callable[[str], None]) -> bool:
        """Load a matching checkpoint; True when one is resumed."""
        old = _read_state(self.folder)
        if resume is False or old is None:
            if resume is True:
                raise MlkitError(f"--resume: there is no interrupted run to resume in {self.folder}")
            if old is not None or self.folder.exists():
                shutil.rmtree(self.folder, ignore_errors=True)
            return False
        if old.get("fingerprint") != self.fingerprint:
            differs = sorted(k for k in settings if k in SHAPING and old.get("settings", {}).get(k) != settings[k])
            what = ", ".join(differs) if differs else "the dataset"
            if resume is True:
                raise MlkitError(f"the interrupted run in {self.folder} used other settings ({what} differ); "
                                 "rerun with those, or with --no-resume to start over")
            say(f"An interrupted run with other settings ({what}) was set aside; training from the start.")
            shutil.rmtree(self.folder, ignore_errors=True)
            return False
        self.state = old
        return True

    def file(self, name: str) -> Path:
        return self.folder / name

    def write_array(self, name: str, array: np.ndarray) -> str:
        if self.enabled:
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            atomic_write_bytes(self.folder / name, buf.getvalue())
        return name

    def read_array(self, name: str) -> np.ndarray:
        return np.load(self.folder / name, allow_pickle=False)

    def write_weights(self, name: str, weights: list[np.ndarray]) -> str:
        if self.enabled:
            buf = io.BytesIO()
            np.savez(buf, *weights)
            atomic_write_bytes(self.folder / name, buf.getvalue())
        return name

    def read_weights(self, name: str) -> list[np.ndarray]:
        with np.load(self.folder / name, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]

    def write_model(self, name: str, model) -> str:
        if self.enabled:
            save_keras(model, self.folder / name)
        return name

    def commit(self, settings: dict) -> None:
        """Write state.json, then drop files it no longer names."""
        if not self.enabled:
            return
        self.state["settings"] = settings
        atomic_write_text(self.folder / "state.json", json.dumps(self.state, indent=1))
        keep = {"state.json"} | set(_referenced_files(self.state))
        for p in self.folder.iterdir():
            if p.name not in keep and not p.name.startswith(".") and p.is_file():
                p.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def check_backbone(self, model) -> None:
        """A resumed run must start from the same backbone (e.g. the same seeded random init)."""
        first = model.get_layer(BACKBONE_LAYER).weights[0].numpy()
        digest = hashlib.sha256(first.tobytes()).hexdigest()[:16]
        if self.state.get("backbone_digest") not in (None, digest):
            raise MlkitError(f"the interrupted run in {self.folder} started from other backbone weights; "
                             "rerun with --no-resume to start over")
        self.state["backbone_digest"] = digest


def _read_state(folder: Path) -> dict | None:
    """state.json of a checkpoint folder; None when there is none or it cannot be read."""
    path = folder / "state.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _referenced_files(obj) -> list[str]:
    if isinstance(obj, dict):
        return [f for k, v in obj.items() for f in ([v] if k.endswith("file") and isinstance(v, str)
                                                    else _referenced_files(v))]
    if isinstance(obj, list):
        return [f for v in obj for f in _referenced_files(v)]
    return []


def fingerprint(settings: dict, info: DatasetInfo) -> str:
    """What a checkpoint must match to be resumed: the shaping settings, the dataset (its
    content hash, and for a plain folder its split) and the toolkit's version."""
    doc = {k: settings[k] for k in SHAPING}
    doc["dataset"] = info.content_hash or str(info.path.resolve())
    if info.source:   # a plain folder: its split is part of the data
        doc["split"] = info.source
    doc["toolkit"] = __version__
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def describe_progress(state: dict) -> str | None:
    """How far a checkpoint's run got: "head epoch 3", "features computed" or "started"."""
    phases = state.get("phases", {})
    for phase in ("fine_tune", "head"):
        if phase in phases and phases[phase].get("epoch"):
            return f"{phase} epoch {phases[phase]['epoch']}"
    if state.get("features"):
        return "features computed"
    return "started"


def interrupted_message(ckpt: Checkpoints) -> str:
    """What an interrupted run leaves for the next one: read from the checkpoint on disk
    (what was committed), not from memory."""
    state = _read_state(ckpt.folder)
    if not ckpt.enabled or not state:
        return ("Interrupted before anything could be kept (no backbone features computed, no epoch finished): "
                "running the same command again starts from the beginning.")
    progress = describe_progress(state)
    if progress == "features computed":
        return ("Interrupted before the first epoch finished. The backbone features are kept; run the same "
                "command again to resume from them.")
    if progress == "started":
        return "Interrupted before the first epoch finished: running the same command again starts that epoch over."
    return (f"Interrupted. Training is checkpointed up to {progress}; the epoch under way was lost. Run the "
            "same command again to resume from there.")
