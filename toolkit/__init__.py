"""mlkit: from a class name in Google Open Images to an on-device classifier you can trust.

The public API is these names; everything else is machinery one layer down::

    from toolkit import DatasetConfig, TrainConfig, ExportOptions, build_dataset, train, export_model

    dataset = build_dataset(DatasetConfig(positive="Hot dog", negatives=120))
    model = train(TrainConfig(dataset_dir=dataset.path))
    report = export_model(model.path, ExportOptions(coreml=True, tflite=True))

They are imported on first use, so ``import toolkit`` does not load TensorFlow. The library
shows nothing while it works unless given a ``Reporter`` (``reporter=Reporter(print)``
prints its progress lines); errors in what it was given are ``MlkitError``s, and a
parameter out of range is a ``ParameterError`` that names it and the value received.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = '0.1.0'

# public name -> the module that defines it (relative to this package)
_PUBLIC = {
    "build_dataset": ".dataset.build",
    "DatasetConfig": ".dataset.build",
    "train": ".training.train",
    "TrainConfig": ".training.train",
    "evaluate": ".training.evaluate",
    "predict": ".runtimes.predict",
    "export_model": ".export",
    "ExportOptions": ".export",
    "validate": ".export.validate",
    "MlkitError": ".errors",
    "ParameterError": ".errors",
    "Reporter": ".progress",
}

__all__ = [*_PUBLIC, "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .dataset.build import DatasetConfig, build_dataset
    from .errors import MlkitError, ParameterError
    from .progress import Reporter
    from .training.evaluate import evaluate
    from .export import ExportOptions, export_model
    from .runtimes.predict import predict
    from .training.train import TrainConfig, train
    from .export.validate import validate


def __getattr__(name: str) -> Any:
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}; its public names are "
                             f"{', '.join(sorted(_PUBLIC))}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
