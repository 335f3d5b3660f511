"""What ``train`` leaves in ``<output>/<name>/`` when it finishes: model.keras, labels.txt,
model.json (the model card), training.json (settings, dataset, history, timings,
evaluation) and the PNG plots. They are written into a staging folder that then takes the
old folder's place in one step (``fsutil.atomic_folder``), so a kill at any moment leaves
the previous model whole; whether an old model may be replaced at all is decided before
any work (``toolkit.training.model_folder``)."""

from __future__ import annotations

import json
from pathlib import Path

from . import plots
from .config import TrainConfig
from .data import DatasetInfo, load_images
from .evaluate import EvalResult
from ..fsutil import atomic_folder, atomic_write_bytes, atomic_write_text, remove_partial_folders
from .model import WeightsChoice, save_keras
from .spec import KERAS_FILE, LABELS_FILE, ModelCard, ModelSpec, labels_text, library_versions

TRAINING_JSON = "training.json"
PLOT_FILES = {"curves": "learning_curves.png", "confusion": "confusion_matrix.png",
              "misclassified": "misclassified.png"}
MISCLASSIFIED_SHOWN = 16   # images drawn in misclassified.png (all are listed)


def model_card(config: TrainConfig, spec: ModelSpec, name: str, info: DatasetInfo, weights: WeightsChoice,
               phases: dict, evaluation: EvalResult) -> ModelCard:
    """model.json: the model's facts, how it was trained (``phases``: the checkpoint's
    per-phase state) and how it scored."""
    summary = {
        "phases": {p: {"epochs": s.get("epoch"), "best_epoch": (s.get("best") or {}).get("epoch"),
                       "best_val_loss": (s.get("best") or {}).get("val_loss"),
                       "stopped_early": bool(s.get("stopped_early"))} for p, s in phases.items()},
        **{k: v for k, v in config.settings().items() if k not in ("dataset_dir", "output_dir", "name", "resume",
                                                                   "alpha", "image_size", "dropout", "resize_mode")},
        "class_weights": info.class_weights, "repeat": info.repeat,
    }
    metrics = {"split": evaluation.split, "images": evaluation.n, "accuracy": round(evaluation.accuracy, 6),
               "roc_auc": None if evaluation.roc_auc is None else round(evaluation.roc_auc, 6),
               "classes": [c.to_json() for c in evaluation.classes]}
    return ModelCard(spec=spec, name=name, dataset={**info.to_json(), "path": str(info.path.resolve())},
                     weights=weights.to_json(), training=summary, metrics=metrics, versions=library_versions())


def training_record(config: TrainConfig, info: DatasetInfo, weights: WeightsChoice, history: list[dict],
                    timings: dict, evaluation: EvalResult, resumed_from: str | None, notes: list[str],
                    versions: dict) -> dict:
    """training.json's content."""
    return {"format": 1, "settings": config.settings(), "dataset": info.to_json(), "weights": weights.to_json(),
            "history": history, "timings": timings, "resumed_from": resumed_from,
            "evaluation": evaluation.to_json(), "notes": notes, "versions": versions}


def write_outputs(folder: Path, model, card: ModelCard, training: dict, evaluation: EvalResult) -> list[str]:
    """Write everything into a staging folder, then swap it in place of ``folder``; the
    names of the files written."""
    for tag in ("partial", "old"):   # left by a run killed while writing its outputs
        remove_partial_folders(folder, tag)
    with atomic_folder(folder, "partial") as staging:
        save_keras(model, staging / KERAS_FILE)
        atomic_write_text(staging / LABELS_FILE, labels_text(card.spec.labels))
        card.write(staging)
        atomic_write_text(staging / TRAINING_JSON, json.dumps(training, indent=2) + "\n")
        _write_plots(staging, card, training["history"], evaluation)
        files = sorted(p.name for p in staging.iterdir())
    return files


def _write_plots(staging: Path, card: ModelCard, history: list[dict], evaluation: EvalResult) -> None:
    title = f"{card.name}: MobileNetV2 alpha {card.spec.alpha}, {card.spec.image_size} px"
    atomic_write_bytes(staging / PLOT_FILES["curves"], plots.learning_curves(history, title))
    atomic_write_bytes(staging / PLOT_FILES["confusion"], plots.confusion_matrix_plot(
        evaluation.confusion, card.spec.labels, f"{evaluation.split} split ({evaluation.n} images)"))
    wrong = evaluation.misclassified()
    shown = wrong[:MISCLASSIFIED_SHOWN]
    images = load_images([evaluation.paths[i] for i in shown], card.spec) if len(shown) else None
    labels = card.spec.labels
    atomic_write_bytes(staging / PLOT_FILES["misclassified"], plots.misclassified_grid(
        [evaluation.paths[i] for i in wrong], [labels[evaluation.y_true[i]] for i in wrong],
        [labels[evaluation.y_pred[i]] for i in wrong],
        [float(evaluation.probs[i, evaluation.y_pred[i]]) for i in wrong], images,
        title=f"misclassified {evaluation.split} images ({len(wrong)} of {evaluation.n})"))
