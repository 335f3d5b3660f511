"""``evaluate``: how good a model is on a split of a dataset.

Accuracy, per-class precision / recall / F1 with their macro and weighted averages, ROC
AUC (two classes: of the positive class; more: one-vs-rest for each class and their macro
mean), the N x N confusion matrix, and (two classes, given a target precision) the
decision threshold that reaches it with the highest recall. Works for every model format
``toolkit.runtimes.predict`` has a runner for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import metrics
from ..errors import MlkitError, ParameterError
from .spec import ModelSpec


@dataclass
class EvalResult:
    model: str
    data: str
    split: str
    labels: list[str]
    positive_label: str
    decision_threshold: float          # the model's threshold (model.json) used for the labels below
    n: int
    accuracy: float
    classes: list[metrics.ClassScores]
    roc_auc: float | None              # two classes: of the positive class; more: macro one-vs-rest
    confusion: np.ndarray              # rows true, columns predicted
    target_precision: float | None = None
    threshold: metrics.Threshold | None = None
    roc_auc_per_class: dict[str, float | None] = field(default_factory=dict)   # one-vs-rest
    averages: dict[str, dict[str, float]] = field(default_factory=dict)        # macro, weighted
    # Kept for plots and inspection, not written to JSON:
    paths: list[Path] = field(default_factory=list, repr=False)
    y_true: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    y_pred: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)

    @property
    def report(self) -> str:
        """The classification report as text (precision, recall, F1, support, accuracy)."""
        return metrics.classification_report(self.confusion, self.labels)

    def misclassified(self) -> np.ndarray:
        return np.flatnonzero(self.y_true != self.y_pred)

    def to_json(self) -> dict:
        return {
            "model": self.model, "data": self.data, "split": self.split, "images": self.n,
            "labels": self.labels, "positive_label": self.positive_label,
            "decision_threshold": self.decision_threshold,
            "accuracy": round(self.accuracy, 6), "classes": [c.to_json() for c in self.classes],
            "roc_auc": None if self.roc_auc is None else round(self.roc_auc, 6),
            "roc_auc_per_class": {k: None if v is None else round(v, 6) for k, v in self.roc_auc_per_class.items()},
            "averages": {k: {m: round(v, 6) for m, v in avg.items()} for k, avg in self.averages.items()},
            "confusion_matrix": self.confusion.tolist(),
            "target_precision": self.target_precision,
            "threshold": None if self.threshold is None else self.threshold.to_json(),
        }


def score(spec: ModelSpec, y_true: np.ndarray, probs: np.ndarray, *, target_precision: float | None = None,
          paths: Sequence[Path] = (), model: str = "", data: str = "", split: str = "") -> EvalResult:
    """Metrics of class probabilities ``probs`` (n, classes) against true indices ``y_true``."""
    from ..runtimes.predict import decide

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    y_pred = decide(probs, spec)
    cm = metrics.confusion_matrix(y_true, y_pred, len(spec.labels))
    pos = spec.positive_index
    is_pos = y_true == pos
    scores = probs[:, pos] if len(probs) else np.zeros(0)
    threshold = None
    if target_precision is not None:
        threshold = metrics.threshold_for_precision(is_pos, scores, target_precision)
    per_class = metrics.per_class_scores(cm, spec.labels)
    ovr = metrics.one_vs_rest_auc(y_true, probs, spec.labels)
    auc = metrics.roc_auc(is_pos, scores) if len(spec.labels) == 2 else metrics.macro_auc(ovr)
    return EvalResult(
        model=model, data=data, split=split, labels=list(spec.labels), positive_label=spec.positive_label,
        decision_threshold=spec.threshold, n=int(len(y_true)), accuracy=metrics.accuracy(cm),
        classes=per_class, roc_auc=auc,
        confusion=cm, target_precision=target_precision, threshold=threshold, paths=list(paths),
        y_true=y_true, y_pred=y_pred, probs=probs, roc_auc_per_class=ovr, averages=metrics.averages(per_class))


def evaluate(model_path: Path | str, data_dir: Path | str | None = None, split: str = "test",
             target_precision: float | None = None, batch_size: int = 32) -> EvalResult:
    """Run the model on every image of ``split`` of ``data_dir`` (default: the dataset it was
    trained on, as recorded in model.json) and score it."""
    from .data import check_image_files, decode_errors_named, image_dataset, model_split
    from ..runtimes.predict import open_runner

    if target_precision is not None and not 0 < target_precision <= 1:
        raise ParameterError("target_precision", target_precision, "must be in (0, 1]")
    if batch_size < 1:
        raise ParameterError("batch_size", batch_size, "must be at least 1")
    runner = open_runner(model_path)
    spec = runner.card.spec
    if target_precision is not None and len(spec.labels) != 2:
        raise MlkitError(f"--target-precision tunes the threshold of a two-class model; this one has "
                         f"{len(spec.labels)} classes ({', '.join(spec.labels)}) and predicts the most probable: "
                         "leave --target-precision out")
    info, files = model_split(runner.card.dataset, spec.labels, data_dir, split, "evaluate")
    check_image_files(files.paths)
    ds = image_dataset(files.paths, spec, batch_size=batch_size, cache=False)
    with decode_errors_named(files.paths):
        probs = np.concatenate([runner.predict(batch.numpy()) for batch in ds])
    return score(spec, files.labels, probs, target_precision=target_precision, paths=files.paths,
                 model=str(runner.path), data=str(info.path), split=split)


def write_plots(result: EvalResult, folder: Path | str) -> list[Path]:
    """``confusion_matrix.png`` and ``misclassified.png`` (up to 16 images, read from their
    files) of an evaluation, written atomically into ``folder``; the paths written."""
    from . import plots
    from ..fsutil import atomic_write_bytes

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MlkitError(f"--plots {folder} is a file: give a folder for the PNG files")
    folder.mkdir(parents=True, exist_ok=True)
    cm_path = folder / "confusion_matrix.png"
    atomic_write_bytes(cm_path, plots.confusion_matrix_plot(
        result.confusion, result.labels, f"{result.split} split ({result.n} images)"))
    wrong = result.misclassified()
    wrong_path = folder / "misclassified.png"
    atomic_write_bytes(wrong_path, plots.misclassified_grid(
        [result.paths[i] for i in wrong], [result.labels[result.y_true[i]] for i in wrong],
        [result.labels[result.y_pred[i]] for i in wrong], [float(result.probs[i, result.y_pred[i]]) for i in wrong],
        title=f"misclassified {result.split} images ({len(wrong)} of {result.n})"))
    return [cm_path, wrong_path]
