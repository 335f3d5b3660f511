"""Test helpers that make small Keras models (MobileNetV2 alpha 0.35) without training them."""

from __future__ import annotations

from pathlib import Path


def save_untrained_model(folder: Path, labels: list[str], image_size: int = 96) -> Path:
    """``folder`` as ``mlkit train`` writes a model folder (model.keras, model.json named
    after the folder, labels.txt), holding a random MobileNetV2 0.35 (Keras seed 0) that was
    never trained. Returns ``folder``."""
    import keras

    from toolkit.training.model import build_classifier, save_keras
    from toolkit.training.spec import ModelCard, ModelSpec, labels_text

    keras.utils.set_random_seed(0)
    spec = ModelSpec(labels=labels, alpha=0.35, image_size=image_size)
    save_keras(build_classifier(spec, "none"), folder / "model.keras")
    ModelCard(spec=spec, name=folder.name).write(folder)
    (folder / "labels.txt").write_text(labels_text(labels))
    return folder


def save_conditioned_backbone(images: list[Path], path: Path) -> Path:
    """A random MobileNetV2 0.35 / 96 px (Keras seed 0) made well-conditioned on ``images``
    (test_export_coreml's ``condition``), saved as an mlkit model.keras at ``path`` for
    ``mlkit train --weights``. Returns the saved path."""
    import keras

    from test_export_coreml import condition
    from toolkit.training.data import load_images
    from toolkit.training.model import build_classifier, save_keras
    from toolkit.training.spec import ModelSpec

    spec = ModelSpec(labels=["a", "b"], alpha=0.35, image_size=96)   # only its backbone is used
    keras.utils.set_random_seed(0)
    model = build_classifier(spec, "none")
    condition(model, load_images(images, spec))
    return save_keras(model, path)
