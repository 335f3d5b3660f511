"""The model commands: `train`, `review` (likely label errors), `evaluate` and `predict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import MlkitError
from ..training import evaluate as evaluation
from ..training.review import ReviewConfig
from ..training.train import TrainConfig
from .app import JsonOpt, app, checked, default_dataset, fail, out, quiet_tensorflow, run_library
from .configs import config_from, defaults, parameter_defaults

T = defaults(TrainConfig)
R = defaults(ReviewConfig)
EV = parameter_defaults(evaluation.evaluate)


_DatasetDirOpt = Annotated[Optional[Path], typer.Argument(
    help="A dataset folder written by `mlkit build-dataset` (data/<name>, with dataset.json), or any folder "
         "with one subfolder of images per class (DIR/<class>/*.jpg, or DIR/train/<class>/..., val/, test/), "
         "split with --val and --test. Default: the only dataset under ./data.")]
_NameOpt = Annotated[Optional[str], typer.Option(help="Model folder name under --output. Default: the dataset's "
                                                 "name.")]
_OutputOpt = Annotated[Path, typer.Option(help="Where models are written: OUTPUT/NAME/model.keras ...")]
_EpochsOpt = Annotated[Optional[int], typer.Option(
    help="Epochs of training the head on the frozen backbone (early stopping may end sooner). Default: 30 "
         "with --fast (each epoch takes milliseconds on cached features), else 10.")]
_FineTuneLayersOpt = Annotated[int, typer.Option(
    help="Then fine-tune this many top layers of the backbone (MobileNetV2 has 154; e.g. 50). "
                "0: no fine-tuning.")]
_FineTuneEpochsOpt = Annotated[int, typer.Option(help="Epochs of fine-tuning (with --fine-tune-layers).")]
_BatchSizeOpt = Annotated[int, typer.Option(help="Images per training step (the global batch with "
                                                    "--strategy).")]
_LearningRateOpt = Annotated[float, typer.Option(help="Adam learning rate of the head.")]
_FineTuneLearningRateOpt = Annotated[float, typer.Option(help="Adam learning rate of fine-tuning.")]
_AlphaOpt = Annotated[float, typer.Option(
    help="MobileNetV2 width: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4 have ImageNet weights; smaller is faster.")]
_ImageSizeOpt = Annotated[int, typer.Option(
    help="Input side in pixels (96, 128, 160, 192, 224 have ImageNet weights; larger sizes reuse the 224 "
         "weights: 288 or 320 often score 1-2 points higher on photos, at about twice the compute).")]
_WeightsOpt = Annotated[str, typer.Option(
    help="Initial backbone weights: imagenet (Keras' loader; it looks in $KERAS_HOME/models, default "
         "~/.keras/models), none (random), or the path of an .h5 weights file or an mlkit model.keras.")]
_DropoutOpt = Annotated[float, typer.Option(help="Dropout rate before the classifier.")]
_L2Opt = Annotated[float, typer.Option(
    help="L2 penalty on the classifier's weights while training (0: none). It keeps the head from "
         "over-fitting a few hundred photos; it is not saved with the model.")]
_ResizeOpt = Annotated[str, typer.Option(
    help="How an image becomes a square input: squash (the whole image scaled, aspect ratio ignored; "
         "Vision's .scaleFill) or center-crop (the largest centred square; Vision's .centerCrop).")]
_SeedOpt = Annotated[int, typer.Option(help="Seed of every random choice; same data, settings and seed give the "
                                       "same model on the same machine.")]
_AugmentOpt = Annotated[bool, typer.Option(
    "--augment/--no-augment", help="Random flips, rotations, zooms and contrast on training images "
                                   "(training only; slower: images go through the backbone every epoch).")]
_FastOpt = Annotated[Optional[bool], typer.Option(
    "--fast/--no-fast", help="Compute the frozen backbone's features once and train the head on them. "
                             "Default: on unless --augment.")]
_PatienceOpt = Annotated[int, typer.Option(help="Stop a phase after this many epochs without a better "
                                                  "validation loss (the best epoch's weights are kept).")]
_StrategyOpt = Annotated[str, typer.Option(
    help="tf.distribute strategy: default (one device), mirrored (every local GPU, else the CPU), "
         "multi-worker (MultiWorkerMirroredStrategy from TF_CONFIG; Keras 3 trains only a single worker "
         "under it so far, see keras-team/keras#20585).")]
_ResumeOpt = Annotated[Optional[bool], typer.Option(
    "--resume/--no-resume", help="Resume an interrupted run (--resume: insist; --no-resume: start over). "
                                 "Default: resume when an interrupted run with the same settings exists.")]
_ValOpt = Annotated[float, typer.Option(
    help="A folder without dataset.json: the fraction of each class's images held out for validation "
         "(seeded by --seed, the same every run; recorded in model.json).")]
_TestOpt = Annotated[float, typer.Option(
    help="A folder without dataset.json: the fraction of each class's images held out for testing.")]
_OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an earlier model in OUTPUT/NAME (and the exports and validation.json "
                        "beside it) when training finishes. Without it such a folder is refused.")]
_QualityOpt = Annotated[str, typer.Option(
    help="fast: the head on the frozen backbone's features (seconds). best: then fine-tune the whole "
         "backbone with random resized crops, flips and colour jitter, a cosine learning rate and early "
         "stopping (about 10 minutes on 2 CPU cores for 500 photos; it sets --fine-tune-layers, "
         "--fine-tune-epochs 10, --fine-tune-learning-rate 1e-4 and --patience 4 unless you give them).")]
_ExcludeOpt = Annotated[Optional[Path], typer.Option(
    help="Leave these images out of the train and val splits: review.csv from `mlkit review`, or a text "
         "file with one ImageID, file name or dataset-relative path per line. The test split is kept.")]


@app.command("train")
def train_cmd(
    dataset_dir: _DatasetDirOpt = None,
    name: _NameOpt = T.name,
    output: _OutputOpt = T.output_dir,
    epochs: _EpochsOpt = T.epochs,
    fine_tune_layers: _FineTuneLayersOpt = T.fine_tune_layers,
    fine_tune_epochs: _FineTuneEpochsOpt = T.fine_tune_epochs,
    batch_size: _BatchSizeOpt = T.batch_size,
    learning_rate: _LearningRateOpt = T.learning_rate,
    fine_tune_learning_rate: _FineTuneLearningRateOpt = T.fine_tune_learning_rate,
    alpha: _AlphaOpt = T.alpha,
    image_size: _ImageSizeOpt = T.image_size,
    weights: _WeightsOpt = T.weights,
    dropout: _DropoutOpt = T.dropout,
    l2: _L2Opt = T.l2,
    resize: _ResizeOpt = T.resize_mode.replace("_", "-"),
    seed: _SeedOpt = T.seed,
    augment: _AugmentOpt = T.augment,
    fast: _FastOpt = T.fast,
    patience: _PatienceOpt = T.patience,
    strategy: _StrategyOpt = T.strategy,
    resume: _ResumeOpt = T.resume,
    val: _ValOpt = T.val,
    test: _TestOpt = T.test,
    overwrite: _OverwriteOpt = T.overwrite,
    quality: _QualityOpt = T.quality,
    exclude: _ExcludeOpt = T.exclude,
    json_out: JsonOpt = False,
) -> None:
    """Train a MobileNetV2 classifier on a dataset: head first, then optional fine-tuning.

    Writes OUTPUT/NAME/ with model.keras, labels.txt, model.json (what later stages read),
    training.json and PNG plots, all at once when training is done. Interrupted? Run the
    same command again: it resumes from the last finished epoch.
    """
    params = dict(locals())
    quiet_tensorflow()
    from ..training.train import train

    config = checked(lambda: config_from(TrainConfig, params, dataset_dir=dataset_dir or default_dataset(),
                                         output_dir=output, resize_mode=resize.replace("-", "_")))
    run_library(lambda reporter: train(config, reporter=reporter), json_out, render_training,
                interrupted="Interrupted. Run the same command again to resume from what was checkpointed.")


def render_training(result) -> None:
    t = result.timings
    table = Table(title=f"Model {result.path}", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    spec = result.spec
    table.add_row("model", f"MobileNetV2 alpha {spec.alpha}, {spec.image_size} px, labels {', '.join(spec.labels)}")
    if "features_seconds" in t:
        table.add_row("features", f"{t['features_images']} images in {t['features_seconds']:.1f} s "
                                  f"({t['features_images_per_second']:.1f} images/s)")
    for phase in ("head", "fine_tune"):
        if f"{phase}_seconds" in t:
            n = t[f"{phase}_epochs"]
            table.add_row(phase.replace("_", "-"), f"{n} epoch{'' if n == 1 else 's'} in {t[f'{phase}_seconds']:.1f} s "
                                                   f"({t[f'{phase}_images_per_second']:.1f} images/s)")
    table.add_row("total", f"{t['total_seconds']:.1f} s" + (f" (resumed from {result.resumed_from})"
                                                            if result.resumed_from else ""))
    out.print(table)
    if result.evaluation is not None:
        ev = result.evaluation
        out.print(f"\nClassification report ({ev.split} split, {ev.n} images):\n")
        out.print(ev.report, highlight=False)
        _print_auc(ev)
    out.print(f"\nWrote {', '.join(result.files)} to {result.path}/")
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")


@app.command("review")
def review_cmd(
    dataset_dir: Annotated[Optional[Path], typer.Argument(
        help="A dataset folder written by `mlkit build-dataset`. Default: the only dataset under ./data.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        help="Where review.csv and review.png are written. Default: reviews/<dataset name>.")] = R.output_dir,
    top: Annotated[Optional[int], typer.Option(
        help="List at most N images. Default: all that cleanlab flags; a larger N continues down its "
             "label-quality ranking.")] = R.top,
    folds: Annotated[int, typer.Option(help="Cross-validation folds of the out-of-fold predictions (2 or "
                                            "more).")] = R.folds,
    image_size: Annotated[int, typer.Option(help="Input side in pixels of the backbone that computes the "
                                                 "features.")] = R.image_size,
    weights: Annotated[str, typer.Option(help="Backbone weights: imagenet, none, or a path (as for train).")]
        = R.weights,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = R.seed,
    json_out: JsonOpt = False,
) -> None:
    """Find training images whose label the model most disagrees with (likely label errors).

    Out-of-fold predictions over the train and val images (a logistic regression on the
    frozen backbone's features, k folds) ranked by cleanlab's find_label_issues. Writes
    review.csv (rank, file, image id, given and predicted label, confidence) and
    review.png (a contact sheet). Look at them, delete the rows you disagree with, then
    `mlkit train --exclude review.csv`.
    """
    params = dict(locals())
    quiet_tensorflow()
    from ..training.review import review

    config = checked(lambda: config_from(ReviewConfig, params, dataset_dir=dataset_dir or default_dataset(),
                                         output_dir=output))
    run_library(lambda reporter: review(config, reporter=reporter), json_out, render_review,
                interrupted="Interrupted. Nothing was written; run the command again.")


def render_review(result) -> None:
    table = Table(title=f"Likely label errors: {result.flagged} of {result.images} train/val images flagged "
                        f"(out-of-fold accuracy {result.out_of_fold_accuracy:.1%})", title_justify="left")
    for col in ("rank", "file", "given", "predicted", "confidence"):
        table.add_column(col, justify="right" if col in ("rank", "confidence") else "left")
    for r in result.rows:
        table.add_row(str(r.rank) + ("" if r.flagged else "*"), r.file, r.given_label, r.predicted_label,
                      f"{r.confidence:.2f}")
    out.print(table)
    if any(not r.flagged for r in result.rows):
        out.print("* not flagged by cleanlab, listed because of --top")
    out.print(f"\nWrote {', '.join(result.files)} to {result.path}/. Check them, then "
              f"`mlkit train --exclude {result.path / 'review.csv'}`.")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Argument(help="A model folder (models/<name>) or a model file in it.")],
    data: Annotated[Optional[Path], typer.Option(
        help="Dataset folder to evaluate on. Default: the one the model was trained on (model.json).")] = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = EV.split,
    target_precision: Annotated[Optional[float], typer.Option(
        help="Two-class models: also find the decision threshold on the positive class's probability that "
                               "reaches this precision with the highest recall, e.g. 0.95.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per inference batch.")] = EV.batch_size,
    plots: Annotated[Optional[Path], typer.Option(
        help="Also write confusion_matrix.png and misclassified.png into this folder.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy, per-class precision / recall / F1, ROC AUC and confusion matrix of a model."""
    quiet_tensorflow()
    from ..training.evaluate import evaluate, write_plots   # looked up now: the library's function as it is

    try:
        result = evaluate(model, data, split=split, target_precision=target_precision, batch_size=batch_size)
        written = write_plots(result, plots) if plots is not None else []
    except MlkitError as exc:
        fail(exc)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    out.print(f"{result.model} on the {result.split} split of {result.data} ({result.n} images):\n")
    out.print(result.report, highlight=False)
    _print_auc(result)
    cm = Table(title="Confusion matrix (rows: true, columns: predicted)", title_justify="left")
    cm.add_column("")
    for label in result.labels:
        cm.add_column(label, justify="right")
    for label, row in zip(result.labels, result.confusion.tolist()):
        cm.add_row(label, *map(str, row))
    out.print(cm)
    if written:
        out.print(f"Wrote {', '.join(str(p) for p in written)}")
    if result.target_precision is not None:
        th = result.threshold
        if th is None:
            out.print(f"No threshold reaches precision {result.target_precision} for {result.positive_label} "
                      f"on this split.")
        else:
            out.print(f"Threshold for precision >= {th.target_precision}: predict {result.positive_label} when its "
                      f"probability >= {th.threshold:.4f} (precision {th.precision:.3f}, recall {th.recall:.3f}).")


def _print_auc(ev) -> None:
    """Two classes: the positive class's ROC AUC; more: each class against the rest, and their mean."""
    if len(ev.labels) == 2:
        if ev.roc_auc is not None:
            out.print(f"\nROC AUC ({ev.positive_label}): {ev.roc_auc:.4f}")
        return
    per_class = "  ".join(f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in ev.roc_auc_per_class.items())
    out.print(f"\nROC AUC, one vs rest: {per_class}", highlight=False)
    if ev.roc_auc is not None:
        out.print(f"ROC AUC, macro mean: {ev.roc_auc:.4f}")


def _shown_path(path: Path) -> str:
    """A path as short as it can be told: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@app.command("predict")
def predict_cmd(
    model: Annotated[Path, typer.Argument(help="A model folder (models/<name>) or a model file in it.")],
    images: Annotated[list[Path], typer.Argument(
        help="Image files (JPEG, PNG, BMP, GIF), or folders: every image in them and their subfolders.")],
    top_k: Annotated[Optional[int], typer.Option(
        "--top-k", help="Also list the K most probable labels. Default: 3 for a model of more than two classes, "
                        "none for two.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Label and probability for each image."""
    quiet_tensorflow()
    from ..runtimes.predict import predict

    try:
        predictions = predict(model, images, top_k=top_k)
    except MlkitError as exc:
        fail(exc)
    if json_out:
        print(json.dumps([p.to_json() for p in predictions], indent=2))
        return
    table = Table(show_header=True)
    table.add_column("image", overflow="fold")
    table.add_column("label")
    table.add_column("probability", justify="right")
    k = max((p.top_k for p in predictions), default=0)
    if k:
        table.add_column(f"top {k}")
    for p in predictions:
        table.add_row(_shown_path(p.path), p.label, f"{p.probability:.4f}",
                      *(["\n".join(f"{lab} {v:.4f}" for lab, v in p.top)] if k else []))
    out.print(table)
