"""``CoreMLRunner``: run a ``.mlmodel`` / ``.mlpackage`` in Core ML where it exists
(macOS), else in the NumPy reference evaluator (``toolkit.runtimes.coreml_eval``).

Either way the runner executes the exported FILE, not the Keras model it came from, so
a conversion mistake shows up as a difference in validation.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path

import numpy as np

from ..errors import MlkitError
from ..training.spec import ModelCard

CORE_ML = "Core ML"
REFERENCE = "reference evaluator (NumPy)"


def core_ml_available() -> tuple[bool, str]:
    """(True, "") where Core ML itself can run a model; else (False, why)."""
    if platform.system() != "Darwin":
        return False, f"Core ML runs only on Apple platforms (this is {platform.system()})"
    try:
        import coremltools.libcoremlpython  # noqa: F401  (the bridge to the Core ML framework)
    except ImportError as exc:
        return False, f"coremltools has no Core ML bridge here ({exc})"
    return True, ""


class CoreMLRunner:
    """The Runner protocol of ``toolkit.runtimes.predict`` for Core ML files.

    ``runtime`` says which engine runs it: ``"Core ML"`` (macOS, CPU only so that fp32 is
    computed in fp32) or the reference evaluator. ``reference=True`` forces the evaluator."""

    def __init__(self, path: Path, card: ModelCard, reference: bool | None = None):
        self.path, self.card = Path(path), card
        use_core_ml = core_ml_available()[0] if reference is None else not reference
        self.runtime = CORE_ML if use_core_ml else REFERENCE
        if use_core_ml:
            import coremltools as ct

            try:
                self._model = ct.models.MLModel(str(self.path), compute_units=ct.ComputeUnit.CPU_ONLY)
            except Exception as exc:
                raise MlkitError(f"Core ML cannot load {self.path}: {exc}") from exc
            description = self._model.get_spec().description
            # An ML program names its labels in its classify op; each prediction's probability
            # dictionary is checked against model.json's labels instead (see predict).
            self.labels = _spec_labels(self._model.get_spec()) or list(card.spec.labels)
            self.probabilities_output = description.predictedProbabilitiesName
            self.input_name = next(f.name for f in description.input)
        else:
            from .coreml_eval import UnsupportedOpError, load

            try:
                self._program = load(self.path)
            except UnsupportedOpError as exc:
                raise MlkitError(f"{self.path}: {exc}") from exc
            self.labels = list(self._program.class_labels or [])
            self.probabilities_output = self._program.probabilities_output
            self.input_name = self._program.image_input.name if self._program.image_input else ""
        self.metadata = self._read_metadata()
        expected = list(card.spec.labels)
        if self.labels != expected:
            raise MlkitError(f"{self.path} has class labels {self.labels} but its model.json says {expected}: "
                             "they belong to different models; export again from this model folder")

    def _read_metadata(self) -> dict:
        if self.runtime == CORE_ML:
            return dict(self._model.user_defined_metadata)
        return dict(self._program.metadata.get("user_defined", {}))

    @property
    def precision(self) -> str | None:
        """fp32 / fp16 / int8 as written by ``mlkit export``, or None for other files."""
        return self.metadata.get("precision")

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.shape[1:] != self.card.spec.input_shape:
            raise MlkitError(f"{self.path} takes {self.card.spec.input_shape} images, got {images.shape[1:]}")
        if self.runtime == REFERENCE:
            return self._program.predict_batch(images)
        from PIL import Image

        out = np.zeros((len(images), len(self.labels)), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, img in enumerate(images):
                pil = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
                probs = self._model.predict({self.input_name: pil})[self.probabilities_output]
                if set(probs) != set(self.labels):
                    raise MlkitError(f"{self.path} answers with labels {sorted(probs)} but its model.json says "
                                     f"{self.labels}: they belong to different models")
                out[i] = [probs[label] for label in self.labels]
        return out


def _spec_labels(spec) -> list[str]:
    if spec.WhichOneof("Type") == "neuralNetworkClassifier":
        return list(spec.neuralNetworkClassifier.stringClassLabels.vector)
    return []
