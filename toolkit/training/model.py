"""``build_classifier``: the Keras model that ``mlkit train`` trains and saves.

    pixels (RGB 0..255) -> normalize (x / 127.5 - 1) -> mobilenet_v2 (no top) -> pool
    (global average) -> dropout -> classifier (Dense, softmax)

Layer names are stable (``pixels``, ``normalize``, ``mobilenet_v2``, ``pool``, ``dropout``,
``classifier``) so training, export and debugging can address them. Augmentation is not
part of this model: it runs in the training input pipeline only (``toolkit.training.data``).

While training, the classifier's kernel can carry an L2 penalty (``l2``); it is a training
term only and ``drop_weight_penalties`` removes it before a model is saved for use, so a
saved model is the same plain stack of layers however it was trained.

BatchNormalization stays in inference mode: the backbone is called with
``training=False`` and, because Keras 3 lets an outer ``training=True`` (what ``fit``
passes) override that, every BatchNormalization layer is also kept non-trainable, which
in Keras 3 means it always uses its moving statistics. The offline ImageNet weights fold
BatchNorm into the convolutions, and batch statistics would destroy their features.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MlkitError
from ..fsutil import atomic_path
from .spec import NORM_OFFSET, NORM_SCALE, ModelSpec

BACKBONE_LAYER = "mobilenet_v2"
POOL_LAYER = "pool"
DROPOUT_LAYER = "dropout"
CLASSIFIER_LAYER = "classifier"

# ImageNet weights Keras publishes for MobileNetV2 (keras/src/applications/mobilenet_v2.py).
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
IMAGENET_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


@dataclass(frozen=True)
class WeightsChoice:
    """Where the backbone's initial weights come from."""

    kind: str                  # "imagenet" | "none" | "file"
    path: Path | None = None   # the .h5 / .keras file read
    note: str = ""             # e.g. weights of another input size were used

    def to_json(self) -> dict:
        return {"kind": self.kind, "file": self.path.name if self.path else None,
                **({"note": self.note} if self.note else {})}


def imagenet_weights_filename(alpha: float, image_size: int) -> str:
    """The no-top file Keras' loader looks for (it uses the 224 px file for other sizes)."""
    rows = image_size if image_size in IMAGENET_SIZES else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def keras_home() -> Path:
    """Keras' cache folder as Keras computes it, read now (Keras itself reads KERAS_HOME
    once, when it is imported)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def resolve_weights(weights: str | Path, spec: ModelSpec, download: bool = True) -> WeightsChoice:
    """Check a ``--weights`` value and find its file, before any work starts.

    ``imagenet``: Keras' published MobileNetV2 weights, from ``$KERAS_HOME/models/`` (default
    ``~/.keras/models/``), downloaded there by Keras' own loader when absent. Where the file
    for this exact input size is missing but one for another size of the same alpha is in
    the cache, that one is used (the convolution weights fit any input size).
    ``none``: random initialisation. Anything else: a path to an ``.h5`` weights file of a
    MobileNetV2 without its top (same alpha), or an mlkit ``.keras`` model whose backbone
    weights are copied. ``download=False``: only what is already cached (MlkitError else).
    """
    w = str(weights)
    if w.lower() == "none":
        return WeightsChoice("none")
    if w.lower() == "imagenet":
        if float(spec.alpha) not in IMAGENET_ALPHAS:
            raise MlkitError(f"ImageNet weights exist for --alpha {', '.join(map(str, IMAGENET_ALPHAS))} only, "
                             f"not {spec.alpha}: choose one of those, or --weights none (random start)")
        return _find_imagenet(spec, download)
    path = Path(w).expanduser()
    if not path.is_file():
        raise MlkitError(f"--weights {w}: no such file. Give imagenet, none, or the path of an .h5 "
                         "MobileNetV2 weights file (no top) or of an mlkit model.keras")
    if path.suffix not in (".h5", ".keras"):
        raise MlkitError(f"--weights {w}: expected an .h5 weights file or a .keras model")
    return WeightsChoice("file", path)


def _find_imagenet(spec: ModelSpec, download: bool = True) -> WeightsChoice:
    fname = imagenet_weights_filename(spec.alpha, spec.image_size)
    models_dir = keras_home() / "models"
    if (models_dir / fname).is_file():
        return WeightsChoice("imagenet", models_dir / fname)
    # Same alpha, another input size, already in the cache: 224 first, then the largest.
    for rows in sorted(IMAGENET_SIZES, key=lambda r: (r != 224, -r)):
        other = models_dir / imagenet_weights_filename(spec.alpha, rows)
        if other.is_file():
            return WeightsChoice("imagenet", other,
                                 note=f"ImageNet weights trained at {rows} px used at {spec.image_size} px "
                                      f"({fname} is not in {models_dir})")
    # Not cached: let Keras' own loader fetch it (it honours KERAS_HOME).
    import keras

    try:
        if not download:
            raise FileNotFoundError("not downloading")
        with contextlib.redirect_stdout(sys.stderr):   # keras prints "Downloading ..." on stdout
            got = keras.utils.get_file(fname, IMAGENET_BASE_URL + fname, cache_subdir="models",
                                       cache_dir=str(keras_home()))
    except Exception as exc:  # noqa: BLE001 - any fetch failure becomes one clear message
        raise MlkitError(
            f"the ImageNet weights for MobileNetV2 alpha {spec.alpha} ({fname}) are not in {models_dir} and "
            f"could not be downloaded ({exc}). Provide them: put {fname} (Keras' published file) in a folder "
            "'models/' and point KERAS_HOME at its parent (e.g. KERAS_HOME=../shared/data/keras, which holds "
            "the 1.0 / 224 px files), or train with --weights none (random start) or --weights PATH") from None
    return WeightsChoice("imagenet", Path(got))


def build_classifier(spec: ModelSpec, weights: str | Path | WeightsChoice = "imagenet", l2: float = 0.0):
    """The functional Keras classifier for ``spec``: raw RGB 0..255 in, class probabilities
    (softmax, ``spec.labels`` order) out. The backbone starts frozen.

    ``weights``: "imagenet" | "none" | a path (see ``resolve_weights``).
    ``l2``: L2 penalty on the classifier's kernel while training (0: none); see
    ``drop_weight_penalties``."""
    import keras

    choice = weights if isinstance(weights, WeightsChoice) else resolve_weights(weights, spec)
    backbone = _backbone(spec, choice)
    inputs = keras.Input(shape=spec.input_shape, name="pixels")
    x = keras.layers.Rescaling(NORM_SCALE, NORM_OFFSET, name="normalize")(inputs)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(x)
    x = keras.layers.Dropout(spec.dropout, name=DROPOUT_LAYER)(x)
    outputs = _classifier(spec, l2)(x)
    model = keras.Model(inputs, outputs, name=f"{spec.backbone}_{spec.alpha:g}_{spec.image_size}_classifier")
    freeze_backbone(model)
    return model


def _backbone(spec: ModelSpec, choice: WeightsChoice):
    import keras

    def make(w):
        return keras.applications.MobileNetV2(input_shape=spec.input_shape, alpha=spec.alpha, include_top=False,
                                              weights=w, name=BACKBONE_LAYER)

    if choice.kind == "none":
        return make(None)
    if choice.kind == "file" and choice.path.suffix == ".keras":
        backbone = make(None)
        source = load_keras_model(choice.path)
        try:
            backbone.set_weights(source.get_layer(BACKBONE_LAYER).get_weights())
        except ValueError as exc:
            raise MlkitError(f"--weights {choice.path}: its backbone does not fit alpha {spec.alpha} "
                             f"({exc}); use the alpha it was trained with") from None
        return backbone
    try:
        # Keras' loader reads the file (what weights="imagenet" does once it has the path).
        return make(str(choice.path))
    except (ValueError, OSError, KeyError) as exc:
        raise MlkitError(f"cannot load backbone weights from {choice.path}: {exc}. The file must hold "
                         f"MobileNetV2 weights without the top for alpha {spec.alpha}") from None


def freeze_backbone(model) -> None:
    """Train only the head: the whole backbone is frozen."""
    model.get_layer(BACKBONE_LAYER).trainable = False


def unfreeze_top(model, n_layers: int) -> int:
    """Make the top ``n_layers`` layers of the backbone trainable (BatchNormalization
    layers stay frozen, i.e. in inference mode). Returns how many layers now train."""
    import keras

    backbone = model.get_layer(BACKBONE_LAYER)
    backbone.trainable = True
    layers = backbone.layers
    cut = max(0, len(layers) - n_layers)
    count = 0
    for i, layer in enumerate(layers):
        train = i >= cut and not isinstance(layer, keras.layers.BatchNormalization) and bool(layer.weights)
        layer.trainable = train
        count += train
    return count


def feature_extractor(model):
    """pixels -> pooled backbone features (the input of the head)."""
    import keras

    return keras.Model(model.input, model.get_layer(POOL_LAYER).output, name="features")


def inference_function(model):
    """``model(x, training=False)`` as one traced TensorFlow function for any batch size:
    cheaper to set up than ``model.predict`` and faster than eager calls."""
    import tensorflow as tf

    signature = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)

    @tf.function(input_signature=[signature])
    def run(x):
        return model(x, training=False)

    return run


def predict_batches(model, batches, on_batch=None) -> np.ndarray:
    """Run ``model`` on an iterable of input batches (a tf.data pipeline of images, or of
    (images, labels)) and return the stacked outputs as float32 NumPy."""
    run = inference_function(model)
    outputs = []
    for batch in batches:
        x = batch[0] if isinstance(batch, tuple) else batch
        outputs.append(run(x).numpy())
        if on_batch:
            on_batch()
    if not outputs:
        return np.zeros((0, *model.output_shape[1:]), np.float32)
    return np.concatenate(outputs).astype(np.float32, copy=False)


def build_head(spec: ModelSpec, feature_dim: int, l2: float = 0.0):
    """The head alone (dropout -> classifier) on pooled features, for the fast path. Its
    layers have the same names and shapes as the full model's, so weights copy over.
    ``l2`` as for ``build_classifier``."""
    import keras

    inputs = keras.Input(shape=(feature_dim,), name="features")
    x = keras.layers.Dropout(spec.dropout, name=DROPOUT_LAYER)(inputs)
    outputs = _classifier(spec, l2)(x)
    return keras.Model(inputs, outputs, name="head")


def _classifier(spec: ModelSpec, l2: float):
    import keras

    return keras.layers.Dense(len(spec.labels), activation="softmax", name=CLASSIFIER_LAYER,
                              kernel_regularizer=keras.regularizers.L2(l2) if l2 else None)


def drop_weight_penalties(model) -> None:
    """Remove the classifier's L2 penalty (a training term) from ``model``, in place: its
    config and losses then match a model built with ``l2=0``; outputs are unchanged."""
    layer = model.get_layer(CLASSIFIER_LAYER)
    layer.kernel_regularizer = None
    layer.kernel.regularizer = None


def copy_head(head, model) -> None:
    model.get_layer(CLASSIFIER_LAYER).set_weights(head.get_layer(CLASSIFIER_LAYER).get_weights())


def save_keras(model, path: Path | str) -> Path:
    """``model.save`` made atomic: written beside ``path`` and renamed onto it."""
    path = Path(path)
    suffix = ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix
    with atomic_path(path, suffix) as tmp:
        tmp.unlink()  # Keras refuses some existing files; it creates its own
        if suffix == ".weights.h5":
            model.save_weights(str(tmp))
        else:
            model.save(str(tmp))
    return path


def load_keras_model(path: Path | str, compile: bool = False):
    """Load a ``.keras`` file; a clear MlkitError when it is missing or not a Keras model."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise MlkitError(f"{path} does not exist: give a model.keras written by `mlkit train`")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - zip / config / weights errors all mean "not a usable model"
        raise MlkitError(damaged_model_message(path, exc)) from None


def damaged_model_message(path: Path, exc: Exception) -> str:
    """What to say about a ``.keras`` file that exists but cannot be loaded: Keras calls a
    truncated or non-zip file "File not found", which sends the user looking in the wrong place."""
    import zipfile

    if not zipfile.is_zipfile(path):
        why = "not a complete .keras file: it is truncated or not a Keras model at all"
    else:
        why = f"its contents are damaged ({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})"
    return (f"{path} exists but mlkit cannot load it: {why}. Restore it from a copy, or train the model again "
            "(`mlkit train ... --overwrite`) and export it again")
