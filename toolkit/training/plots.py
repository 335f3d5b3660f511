"""Training plots as PNG bytes: learning curves, confusion matrix, misclassified images.

Uses matplotlib's object API with the Agg canvas (no display, no global pyplot state);
each function returns PNG bytes that the caller writes atomically.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def learning_curves(history: Sequence[dict], title: str = "") -> bytes:
    """Loss and accuracy per epoch, train and validation; a dashed line where fine-tuning starts."""
    fig = _figure(10, 4)
    x = np.arange(1, len(history) + 1)
    for ax, key, name in ((fig.add_subplot(1, 2, 1), "loss", "loss"),
                          (fig.add_subplot(1, 2, 2), "accuracy", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [h.get(prefix + key) for h in history]
            if any(v is not None for v in values):
                ax.plot(x, [np.nan if v is None else v for v in values], marker="o", label=label)
        phases = [h.get("phase") for h in history]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                ax.axvline(i + 0.5, color="gray", linestyle="--", linewidth=1)
                ax.text(i + 0.6, ax.get_ylim()[1], f" {phases[i]}", va="top", fontsize=8, color="gray")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if len(x):
            ax.legend()
    if title:
        fig.suptitle(title)
    return _png(fig)


def confusion_matrix_plot(cm: np.ndarray, labels: Sequence[str], title: str = "") -> bytes:
    """Counts per (true, predicted) class, rows true. Cells are shaded by the share of their
    row (the recall of the diagonal), so a small class reads as clearly as a large one; the
    figure, fonts and label lengths adapt so that 20 classes stay readable."""
    n = len(labels)
    cm = np.asarray(cm)
    side = min(14.0, max(4.0, 0.55 * n + 2.0))      # inches: 3 classes 4", 20 classes 13"
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot(1, 1, 1)
    rows = cm.sum(axis=1, keepdims=True).astype(np.float64)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, np.float64), where=rows > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    names = [_short(str(x), 18) for x in labels]
    tick = 10 if n <= 8 else 8
    ax.set_xticks(range(n), labels=names, rotation=30 if n <= 6 else 60, ha="right", fontsize=tick)
    ax.set_yticks(range(n), labels=names, fontsize=tick)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    cell = 11 if n <= 6 else (9 if n <= 12 else 7)
    for i in range(n):
        for j in range(n):
            if cm[i, j] or i == j:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=cell,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    return _png(fig)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def misclassified_grid(paths: Sequence[Path], true: Sequence[str], predicted: Sequence[str],
                       probability: Sequence[float], images: np.ndarray | None = None,
                       title: str = "", max_images: int = 16) -> bytes:
    """Up to ``max_images`` misclassified images with their true and predicted labels.

    ``images``: the model inputs (n, h, w, 3) 0..255 if at hand; else the files are read."""
    n = min(len(paths), max_images)
    cols = 4 if n > 4 else max(1, n)
    rows = max(1, -(-n // cols))
    fig = _figure(2.6 * cols, 2.9 * rows)
    if n == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=12)
    for k in range(n):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.axis("off")
        if images is not None:
            ax.imshow(np.clip(images[k], 0, 255).astype(np.uint8))
        else:
            from PIL import Image

            with Image.open(paths[k]) as im:
                ax.imshow(np.asarray(im.convert("RGB")))
        ax.set_title(f"{Path(paths[k]).name}\ntrue {true[k]}\npredicted {predicted[k]} ({probability[k]:.2f})",
                     fontsize=7)
    suffix = f" ({len(paths) - n} more not shown)" if len(paths) > n else ""
    fig.suptitle((title or "misclassified") + suffix)
    return _png(fig)
