"""``CoreMLProgram``: one loaded Core ML file, run the way Core ML's ``predict`` would.

What the caller sees follows the file's own model description: a classifier answers with
its label output (``classLabel``) and its probability dictionary (whatever name
``ClassifierConfig`` / the converter gave it, e.g. ``classLabel_probs`` for an ML program,
the Keras output's name such as ``Identity`` for a NeuralNetwork), other outputs as arrays.

Images: pass them already at the model's input size (a PIL image, or an H x W x 3 uint8 /
float array of RGB values 0..255). Resizing and cropping are the caller's job, because they
are a decision (Vision's crop-and-scale option, mlkit's ``resize_mode``), not part of the
file. The evaluator then does what Core ML does with an image: takes its pixel values in
the colour order the file declares (RGB or BGR; grayscale as ITU-R 601 luma), and applies
the file's preprocessing (NeuralNetwork: the ``scaler``; ML program: the ``mul`` / ``add``
ops coremltools inserts at the start of the program for ``ImageType(scale, bias)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ...errors import MlkitError
from . import mlprogram
from . import neuralnetwork
from ._blas import single_threaded_blas
from .spec import Feature, LoadedSpec, describe_feature, metadata, read_spec


class CoreMLProgram:
    """A Core ML model file compiled for the NumPy reference evaluator.

    Attributes: ``path``, ``format`` ("neuralnetwork" / "mlprogram"),
    ``specification_version``, ``inputs`` / ``outputs`` (``Feature`` s from the model
    description), ``class_labels`` (tuple, or None for a non-classifier),
    ``label_output`` / ``probabilities_output`` (the classifier's output names),
    ``metadata`` (dict), ``op_types`` (the layer / op types the file uses),
    ``weight_storage`` (weight tensors per storage kind, e.g. {"fp16": 52} or
    {"constexpr_affine_dequantize": 53}), ``compute_dtype`` ("fp32" or "fp16": the dtype
    the program's tensors are declared in; a NeuralNetwork always computes in fp32 here).
    """

    def __init__(self, loaded: LoadedSpec):
        model = loaded.model
        self.path: Path = loaded.path
        self.format: str = loaded.format
        self.specification_version: int = int(model.specificationVersion)
        desc = model.description
        self.inputs: tuple[Feature, ...] = tuple(describe_feature(f) for f in desc.input)
        self.outputs: tuple[Feature, ...] = tuple(describe_feature(f) for f in desc.output)
        self.metadata: dict = metadata(model)
        self.label_output: str | None = desc.predictedFeatureName or None
        self.probabilities_output: str | None = desc.predictedProbabilitiesName or None
        self.class_labels: tuple | None = None
        self._prob_tensor: str | None = None
        if self.format == "neuralnetwork":
            self._init_nn(model)
        else:
            self._init_mil(loaded)

    # --- compilation ---------------------------------------------------------------------

    def _init_nn(self, model) -> None:
        kind = model.WhichOneof("Type")
        nn = getattr(model, kind)
        self._nn = neuralnetwork.NNGraph(nn, spec_version=self.specification_version)
        self._mil = None
        self.op_types = tuple(self._nn.layer_types)
        self.compute_dtype = "fp32"
        self.weight_storage = _nn_weight_storage(nn)
        if kind == "neuralNetworkClassifier":
            which = nn.WhichOneof("ClassLabels")
            if which == "stringClassLabels":
                self.class_labels = tuple(nn.stringClassLabels.vector)
            elif which == "int64ClassLabels":
                self.class_labels = tuple(int(v) for v in nn.int64ClassLabels.vector)
            else:
                raise MlkitError(f"{self.path}: the classifier has no class labels")
            # The probabilities: the named blob, else the output the description names,
            # else the last layer's output.
            candidates = [nn.labelProbabilityLayerName, self.probabilities_output]
            produced = self._nn.produced
            self._prob_tensor = next((c for c in candidates if c and c in produced), None)
            if self._prob_tensor is None:
                if not self._nn.steps:
                    raise MlkitError(f"{self.path}: the classifier has no layers")
                self._prob_tensor = self._nn.steps[-1].outputs[0]

    def _init_mil(self, loaded: LoadedSpec) -> None:
        self._mil = mlprogram.MILGraph(loaded.model.mlProgram, loaded.read_blob)
        self._nn = None
        self.op_types = tuple(sorted(self._mil.op_types))
        self.weight_storage = dict(self._mil.weight_kinds)
        declared = {o.dtype for s in self._mil.steps for o in s.outputs if o.dtype is not None}
        self.compute_dtype = "fp16" if np.dtype(np.float16) in declared else "fp32"
        step = self._mil.classify_step
        if step is not None:
            probs = step.op.inputs["probabilities"].arguments[0]
            self._prob_tensor = probs.name
            classes = mlprogram.Args(step.op, self._mil, {}, mlprogram.RunContext()).get("classes")
            if isinstance(classes, np.ndarray):
                classes = classes.reshape(-1).tolist()
            self.class_labels = tuple(c.item() if isinstance(c, np.ndarray) else c
                                      for c in classes)

    # --- public ----------------------------------------------------------------------------

    @property
    def is_classifier(self) -> bool:
        return self.class_labels is not None

    @property
    def image_input(self) -> Feature | None:
        """The (first) image input, or None."""
        return next((f for f in self.inputs if f.kind == "image"), None)

    def predict(self, inputs: Mapping[str, object], *, tensors: Iterable[str] = ()) -> dict:
        """Run one example, like ``MLModel.predict``.

        inputs: {input name: PIL image or H x W x 3 RGB array for an image input, array for
            an array input}.
        tensors: names of intermediate tensors (layer / op outputs) to return as well, for
            locating where a conversion goes wrong.
        Returns {output name: value}: a classifier's label output is a str (or int for
        int64 labels), its probability output a {label: probability} dict, array outputs
        NumPy arrays; then the requested ``tensors``.
        """
        feeds = {}
        for feat in self.inputs:
            if feat.name not in inputs:
                raise MlkitError(f"missing input '{feat.name}' (the model's inputs are "
                                 f"{[f.name for f in self.inputs]})")
            value = inputs[feat.name]
            if feat.kind == "image":
                feeds[feat.name] = image_to_tensor(value, feat)
            else:
                feeds[feat.name] = np.asarray(value)
        extra = list(tensors)
        raw = self._run(feeds, set(extra) | self._wanted(), batch=1)
        result = self._outputs(raw, row=0)
        for name in extra:
            result[name] = raw[name]
        return result

    def predict_batch(self, images: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities for a batch of images: (N, H, W, 3) float32 RGB 0..255 ->
        (N, classes) float32, columns in ``class_labels`` order.

        Runs ``batch_size`` images per pass through the network (same results as one
        ``predict`` per image). The default passes about 74k pixels at once: 8 images of
        96 x 96, one of 224 x 224; larger passes were slower on two cores (memory-bound)."""
        if not self.is_classifier:
            raise MlkitError(f"{self.path} is not a classifier; use predict()")
        image_inputs = [f for f in self.inputs if f.kind == "image"]
        if len(self.inputs) != 1 or len(image_inputs) != 1:
            raise MlkitError("predict_batch needs a model with exactly one image input; "
                             "use predict() with all inputs")
        feat = image_inputs[0]
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise MlkitError(f"predict_batch takes (N, H, W, 3) images, got shape {images.shape}")
        if batch_size is None:
            batch_size = max(1, (8 * 96 * 96) // max(1, images.shape[1] * images.shape[2]))
        batch_size = max(1, int(batch_size))
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            x = images_to_tensor(chunk, feat)
            raw = self._run({feat.name: x}, {self._prob_tensor}, batch=len(chunk))
            probs = np.asarray(raw[self._prob_tensor], dtype=np.float32)
            out.append(probs.reshape(len(chunk), -1))
        if not out:
            return np.zeros((0, len(self.class_labels)), np.float32)
        result = np.concatenate(out, axis=0)
        if result.shape[1] != len(self.class_labels):
            raise MlkitError(f"{self.path}: {result.shape[1]} probabilities per image for "
                             f"{len(self.class_labels)} class labels")
        return result

    # --- internals -----------------------------------------------------------------------

    def _wanted(self) -> set[str]:
        if self._mil is not None:
            names = set(self._mil.outputs)
            if self._prob_tensor:
                names.add(self._prob_tensor)
            return names
        names = {f.name for f in self.outputs if f.name in self._nn.produced}
        if self._prob_tensor:
            names.add(self._prob_tensor)
        return names

    def _run(self, feeds: dict[str, np.ndarray], fetch: set[str], *, batch: int) -> dict:
        with single_threaded_blas():
            return self._run_graph(feeds, fetch, batch=batch)

    def _run_graph(self, feeds: dict[str, np.ndarray], fetch: set[str], *, batch: int) -> dict:
        if self._nn is not None:
            by_name = {f.name: f for f in self.inputs}
            nn_feeds = {}
            for name, x in feeds.items():
                feat = by_name[name]
                if feat.kind == "image":
                    nn_feeds[name] = self._nn.preprocess_image(name, x, feat.color_space)
                else:
                    nn_feeds[name] = np.asarray(x, dtype=np.float32)
            return self._nn.run(nn_feeds, fetch, neuralnetwork.RunContext(batch=batch))
        return self._mil.run(feeds, fetch, mlprogram.RunContext(batch=batch))

    def _outputs(self, raw: dict, row: int) -> dict:
        result: dict[str, object] = {}
        probs = None
        if self.is_classifier:
            p = np.asarray(raw[self._prob_tensor], dtype=np.float32).reshape(-1)
            n = len(self.class_labels)
            probs = p[row * n:(row + 1) * n]
        for feat in self.outputs:
            if self.is_classifier and feat.name == self.label_output:
                result[feat.name] = self.class_labels[int(np.argmax(probs))]
            elif self.is_classifier and feat.name == self.probabilities_output:
                result[feat.name] = {c: float(v) for c, v in zip(self.class_labels, probs)}
            elif feat.name in raw:
                value = raw[feat.name]
                if isinstance(value, list):        # classify outputs of an ML program
                    value = value[row]
                result[feat.name] = value
            else:
                raise MlkitError(f"{self.path}: nothing in the model produces its output "
                                 f"'{feat.name}'")
        return result

    def __repr__(self) -> str:
        what = f"classifier {list(self.class_labels)}" if self.is_classifier else "model"
        return f"<CoreMLProgram {self.format} {what} from {self.path}>"


def load(path: str | Path) -> CoreMLProgram:
    """Load a ``.mlmodel`` or ``.mlpackage`` for the reference evaluator.

    Every layer / op is compiled and every weight decoded here, so a file the evaluator
    cannot run fails now: ``UnsupportedOpError`` names the first unknown layer / op;
    a file that is not a Core ML model, or a package without its weight file, raises
    ``MlkitError``."""
    return CoreMLProgram(read_spec(path))


def _nn_weight_storage(nn) -> dict[str, int]:
    counts: dict[str, int] = {}

    def visit(msg):
        for fd, value in msg.ListFields():
            if fd.message_type is None:
                continue
            items = [value] if hasattr(value, "ListFields") else value
            for item in items:
                if fd.message_type.name == "WeightParams":
                    kind = _weight_kind(item)
                    if kind:
                        counts[kind] = counts.get(kind, 0) + 1
                else:
                    visit(item)

    for layer in nn.layers:
        visit(layer)
    return counts


def _weight_kind(wp) -> str | None:
    if len(wp.floatValue):
        return "fp32"
    if len(wp.float16Value):
        return "fp16"
    if len(wp.rawValue) or len(getattr(wp, "int8RawValue", b"")):
        q = wp.quantization
        kind = q.WhichOneof("QuantizationType") or "raw"
        kind = {"linearQuantization": "linear", "lookupTableQuantization": "lut"}.get(kind, kind)
        return f"{kind}{q.numberOfBits}"
    return None


# --- images --------------------------------------------------------------------------------

def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, what PIL's convert("L") computes (without its rounding)."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def images_to_tensor(images: np.ndarray, feat: Feature) -> np.ndarray:
    """(N, H, W, 3) RGB 0..255 -> (N, C, H, W) float32 in the model's colour order."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3 and feat.color_space.startswith("GRAYSCALE"):
        images = images[..., None]
    n, h, w = images.shape[:3]
    if not feat.flexible and (w, h) != (feat.width, feat.height):
        raise MlkitError(f"input '{feat.name}' takes {feat.width}x{feat.height} images, got "
                         f"{w}x{h}: resize (and crop) images to the model's input size first")
    channels = images.shape[3]
    if feat.color_space.startswith("GRAYSCALE"):
        gray = images[..., 0] if channels == 1 else _luma(images)
        return np.ascontiguousarray(gray[:, None, :, :], dtype=np.float32)
    if channels != 3:
        raise MlkitError(f"input '{feat.name}' takes RGB images (3 channels), got {channels}")
    if feat.color_space == "BGR":
        images = images[..., ::-1]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


def image_to_tensor(image, feat: Feature) -> np.ndarray:
    """One PIL image or H x W x 3 (H x W for grayscale) array -> (1, C, H, W) float32."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        image = image.convert("L" if feat.color_space.startswith("GRAYSCALE") else "RGB")
        arr = np.asarray(image, dtype=np.float32)
    else:
        arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise MlkitError(f"input '{feat.name}' takes one image (H x W x 3), got shape {arr.shape}")
    return images_to_tensor(arr[None], feat)
