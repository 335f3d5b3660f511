"""A Core ML reference evaluator in NumPy: run an exported ``.mlmodel`` / ``.mlpackage``
where no Core ML runtime exists (Linux).

It executes what the FILE says — the NeuralNetwork layers or the MIL program, its weights,
its image preprocessing, its classifier outputs — never the Keras model it came from, so a
conversion bug shows up as a difference from Keras.

    from toolkit.runtimes.coreml_eval import load
    model = load("HotDogClassifier.mlpackage")
    model.predict({"image": pil_image_at_model_size})
    # {'classLabel': 'hot_dog', 'classLabel_probs': {'hot_dog': 0.93, 'not_hot_dog': 0.07}}
    model.predict_batch(images_nhwc_0_255)    # (N, classes) probabilities

Resizing images to the model's input size is the caller's job (see ``program``).

Modules: ``spec`` (reading files), ``weights`` (blob file, immediate values, NeuralNetwork
weight formats), ``ops`` (NumPy kernels), ``neuralnetwork/`` (NeuralNetwork layer
semantics, one module per layer family), ``mlprogram/`` (MIL op semantics, one module per
op family), ``program`` (``CoreMLProgram``: inputs, outputs, batches).
``supported()`` lists the layers and ops it runs; anything else fails at ``load`` with an
``UnsupportedOpError`` naming the layer / op.
"""

from __future__ import annotations

from .errors import UnsupportedOpError
from .program import CoreMLProgram, load
from .spec import Feature


def supported() -> dict[str, list[str]]:
    """{"neuralnetwork": layer types, "mlprogram": op types} the evaluator runs."""
    from . import mlprogram
    from . import neuralnetwork

    return {"neuralnetwork": neuralnetwork.supported_layers(),
            "mlprogram": mlprogram.supported_ops()}


__all__ = ["CoreMLProgram", "Feature", "UnsupportedOpError", "load", "supported"]
