"""``mlkit demo``: the whole job, offline, on the embedded Open Images mirror."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .dataset.build import DatasetConfig, DatasetResult, build_dataset
from .errors import MlkitError
from .mirror import start_mirror
from .progress import SILENT, Reporter


@dataclass
class DemoResult:
    workdir: Path
    dataset: DatasetResult
    training: object | None = None     # toolkit.training.train.TrainResult
    evaluation: object | None = None   # toolkit.training.evaluate.EvalResult of the saved model
    export: object | None = None       # toolkit.export.ExportReport (Core ML + TFLite, validated)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)   # stage -> wall time

    def to_json(self) -> dict:
        out = {"workdir": str(self.workdir), "dataset": self.dataset.to_json()}
        if self.training is not None:
            out["training"] = self.training.to_json()
        if self.evaluation is not None:
            out["evaluation"] = self.evaluation.to_json()
        if self.export is not None:
            out["export"] = self.export.to_json()
        out["seconds"] = {k: round(v, 1) for k, v in self.seconds.items()}
        if self.notes:
            out["notes"] = self.notes
        return out


def demo_train_config(dataset_dir: Path, output_dir: Path):
    """A small, fast configuration: ImageNet-initialised MobileNetV2 1.0 at 128 px when
    the ImageNet weights are already on this machine (no download: the demo is offline),
    else a random-initialised 0.35 at 96 px, which runs the same code but learns little."""
    from .training.model import resolve_weights
    from .training.spec import ModelSpec
    from .training.train import TrainConfig

    # the demo's workdir is its own: a rerun replaces the model it made before
    base = dict(dataset_dir=dataset_dir, output_dir=output_dir, batch_size=32, seed=0, overwrite=True)
    try:
        resolve_weights("imagenet", ModelSpec(labels=["a", "b"], alpha=1.0, image_size=128), download=False)
    except MlkitError:
        return TrainConfig(**base, alpha=0.35, image_size=96, weights="none", epochs=3), (
            "ImageNet weights are not on this machine (KERAS_HOME/models), so the demo trains from random "
            "weights and its accuracy means nothing; see `mlkit train --help` (--weights) to provide them")
    return TrainConfig(**base, alpha=1.0, image_size=128, weights="imagenet"), None


def run_demo(workdir: Path, *, reporter: Reporter = SILENT, train: bool = True, export: bool = True) -> DemoResult:
    """Generate the mirror, serve it on 127.0.0.1, and build a 'Hot dog' dataset from it
    exactly as from Open Images (real HTTP, the official file layout and schemas); then
    train a small classifier on it, evaluate the saved model on the test split, export it
    to Core ML (.mlmodel) and TFLite, and validate both files against the Keras model."""
    say = reporter.note
    clock = time.perf_counter()
    workdir = Path(workdir)
    say(f"Generating the embedded Open Images mirror in {workdir / 'mirror'} ...")
    server, info = start_mirror(workdir / "mirror")
    with server:
        say(f"Serving it at {info.base_url}; building the dataset ...")
        config = DatasetConfig(positive="Hot dog", negatives=120, data_dir=workdir / "data",
                               source=info.metadata_base, image_source=info.images_base,
                               cache_dir=workdir / "cache", force=True)
        result = build_dataset(config, reporter=reporter)
    demo = DemoResult(workdir, result)
    demo.seconds["dataset"] = time.perf_counter() - clock
    if not train:
        return demo
    from .training.evaluate import evaluate
    from .training.train import train as train_model

    train_config, note = demo_train_config(result.path, workdir / "models")
    if note:
        demo.notes.append(note)
        say(f"note: {note}")
    say(f"Training MobileNetV2 {train_config.alpha:g} at {train_config.image_size} px "
        f"({train_config.weights} weights) ...")
    clock = time.perf_counter()
    demo.training = train_model(train_config, reporter=reporter)
    say("Evaluating the saved model on the test split ...")
    demo.evaluation = evaluate(demo.training.path, result.path, split="test")
    demo.seconds["train"] = time.perf_counter() - clock
    if not export:
        return demo
    from .export import ExportOptions, export_model

    clock = time.perf_counter()
    say("Exporting to Core ML and TFLite, then validating each file against Keras on the test split ...")
    demo.export = export_model(demo.training.path, ExportOptions(coreml=True, tflite=True), reporter=reporter)
    demo.seconds["export"] = time.perf_counter() - clock
    return demo
