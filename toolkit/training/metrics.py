"""Classification metrics in plain NumPy: confusion matrix, per-class precision / recall /
F1, accuracy, ROC AUC, and the decision threshold that reaches a target precision.

Pure functions of labels and scores (no TensorFlow, no files), so they are tested fast
against hand-computed cases. Conventions follow scikit-learn's where it has them: rows of
the confusion matrix are true classes, columns predicted; an undefined precision or
recall (nothing predicted / nothing present) counts as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as class ``j``."""
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} vs {p.size})")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class indices must be in 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def accuracy(cm: np.ndarray) -> float:
    total = int(cm.sum())
    return float(np.trace(cm)) / total if total else 0.0


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int       # true samples of the class

    def to_json(self) -> dict:
        return {"label": self.label, "precision": round(self.precision, 6), "recall": round(self.recall, 6),
                "f1": round(self.f1, 6), "support": self.support}


def per_class_scores(cm: np.ndarray, labels: Sequence[str]) -> list[ClassScores]:
    """Precision, recall and F1 of each class from a confusion matrix."""
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    present = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, present, out=np.zeros_like(tp), where=present > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return [ClassScores(str(label), float(precision[i]), float(recall[i]), float(f1[i]), int(present[i]))
            for i, label in enumerate(labels)]


def roc_auc(is_positive: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float | None:
    """Area under the ROC curve: the probability that a random positive scores higher than a
    random negative, ties counting one half (Mann-Whitney U with average ranks).

    None when only one class is present (the AUC is undefined)."""
    y = np.asarray(is_positive, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], sorted_vals.size]
    mean_rank = (starts + ends + 1) / 2.0        # mean of (start+1 .. end) 1-based
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def averages(scores: Sequence[ClassScores]) -> dict[str, dict[str, float]]:
    """Macro (each class counts the same) and weighted (by support) averages of precision,
    recall and F1, as scikit-learn's classification report gives them."""
    support = np.array([s.support for s in scores], dtype=np.float64)
    out = {}
    for name, w in (("macro", np.ones_like(support)), ("weighted", support)):
        if w.sum() == 0:
            out[name] = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
            continue
        out[name] = {k: float(np.average([getattr(s, k) for s in scores], weights=w))
                     for k in ("precision", "recall", "f1")}
    return out


def one_vs_rest_auc(y_true: Sequence[int] | np.ndarray, probs: np.ndarray,
                    labels: Sequence[str]) -> dict[str, float | None]:
    """ROC AUC of each class against all the others, scored by its own probability (None
    where the class is absent or alone in ``y_true``)."""
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64).reshape(len(y), len(labels)) if len(y) else np.zeros((0, len(labels)))
    return {str(label): roc_auc(y == i, p[:, i]) for i, label in enumerate(labels)}


def macro_auc(per_class: dict[str, float | None]) -> float | None:
    """The mean of the defined one-vs-rest AUCs (scikit-learn's ``multi_class="ovr"``,
    ``average="macro"``); None when none is defined."""
    defined = [v for v in per_class.values() if v is not None]
    return float(np.mean(defined)) if defined else None


@dataclass(frozen=True)
class Threshold:
    """Predict the positive class when its probability is >= ``threshold``."""

    target_precision: float
    threshold: float
    precision: float       # reached on the data it was chosen on
    recall: float

    def to_json(self) -> dict:
        return {"target_precision": self.target_precision, "threshold": round(self.threshold, 6),
                "precision": round(self.precision, 6), "recall": round(self.recall, 6)}


def threshold_for_precision(is_positive: Sequence[bool] | np.ndarray, scores: Sequence[float] | np.ndarray,
                            target_precision: float) -> Threshold | None:
    """The threshold with precision >= ``target_precision`` and the highest recall (of
    several with that recall, the highest threshold). None when no threshold reaches it."""
    if not 0 < target_precision <= 1:
        raise ValueError(f"target precision must be in (0, 1], got {target_precision}")
    y = np.asarray(is_positive, dtype=bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length ({y.size} vs {s.size})")
    n_pos = int(y.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # candidate thresholds: each distinct score; predicted positive = everything >= it
    last_of_run = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    tp = np.cumsum(y_sorted)[last_of_run]
    predicted = last_of_run + 1
    precision = tp / predicted
    recall = tp / n_pos
    # a tiny tolerance so that e.g. 0.95 reached as 19/20 is not lost to rounding
    ok = np.flatnonzero(precision >= target_precision - 1e-12)
    if ok.size == 0:
        return None
    best_recall = recall[ok].max()
    i = ok[recall[ok] == best_recall][0]      # first = highest threshold
    return Threshold(float(target_precision), float(s_sorted[last_of_run[i]]), float(precision[i]),
                     float(recall[i]))


def classification_report(cm: np.ndarray, labels: Sequence[str], digits: int = 3) -> str:
    """The familiar text table: precision, recall, F1 and support per class, then accuracy
    and the macro and support-weighted averages."""
    scores = per_class_scores(cm, labels)
    total = int(cm.sum())
    width = max([len(s.label) for s in scores] + [len("weighted avg")])
    head = f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"
    lines = [head, ""]
    for s in scores:
        lines.append(f"{s.label:>{width}}  {s.precision:>9.{digits}f}  {s.recall:>9.{digits}f}  "
                     f"{s.f1:>9.{digits}f}  {s.support:>9d}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {accuracy(cm):>9.{digits}f}  {total:>9d}")
    weights = np.array([s.support for s in scores], dtype=np.float64)
    for name, w in (("macro avg", np.ones_like(weights)), ("weighted avg", weights)):
        if w.sum() == 0:
            continue
        avg = [float(np.average([getattr(s, k) for s in scores], weights=w)) for k in ("precision", "recall", "f1")]
        lines.append(f"{name:>{width}}  {avg[0]:>9.{digits}f}  {avg[1]:>9.{digits}f}  {avg[2]:>9.{digits}f}  "
                     f"{total:>9d}")
    return "\n".join(lines)
