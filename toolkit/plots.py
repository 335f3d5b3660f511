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
    """Counts per (true, predicted) class, rows true."""
    n = len(labels)
    fig = _figure(1.6 + 1.1 * n, 1.2 + 1.0 * n)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, int(cm.max())))
    ax.set_xticks(range(n), labels=list(labels), rotation=30, ha="right")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    half = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center",
                    color="white" if cm[i, j] > half else "black")
    ax.set_title(title or "confusion matrix")
    return _png(fig)


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
