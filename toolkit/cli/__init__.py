"""The ``mlkit`` command line: thin commands over the library.

Each command parses and checks its options, calls one library function, and renders its
result (a table, or JSON with ``--json``). A user error (``MlkitError``) prints its
message and exits with code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import __version__
from ..errors import MlkitError, ParameterError

app = typer.Typer(
    name="mlkit",
    help="From an Open Images class name to an on-device image classifier you can trust.\n\n"
         "Start with `mlkit demo` (offline), or `mlkit classes \"hot dog\"` then "
         "`mlkit build-dataset --positive \"Hot dog\"`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

SourceOpt = Annotated[Optional[str], typer.Option(
    "--source", help="Where Open Images metadata comes from: a base URL or a local folder laid out like "
                     "https://storage.googleapis.com/openimages/ (the default).")]
CacheOpt = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Where downloaded metadata and its indexes are kept. Default: $MLKIT_CACHE, "
                        "else the user cache directory (~/.cache/mlkit, ~/Library/Caches/mlkit).")]
LabelSetOpt = Annotated[str, typer.Option(
    "--label-set", help="'all': v7 human-verified labels of ~20k classes; 'boxable': v5 labels of the "
                        "600 boxable classes (smaller files).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout (for scripts).")]


def _message(exc: MlkitError) -> str:
    """The error in the words of the command line: a parameter is named by its flag."""
    return exc.command_line() if isinstance(exc, ParameterError) else str(exc)


def _fail(exc: MlkitError) -> None:
    err.print(f"[bold red]error:[/] {escape(_message(exc))}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _run(call, json_out: bool, render, *, interrupted: str) -> None:
    """Run a library call (given a log function, or None with --json), then print its
    result as JSON or through ``render``; user errors and Ctrl-C end the command cleanly."""
    try:
        result = call(None if json_out else lambda m: err.print(m, highlight=False))
    except MlkitError as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:   # the library may say what was kept (train does)
        err.print(str(exc) or interrupted, highlight=False)
        raise typer.Exit(130)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    render(result)


def _splits(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _names(text: str) -> tuple[str, ...]:
    """A comma list of class names (display names or MIDs), blanks dropped."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _version(value: bool) -> None:
    if value:
        out.print(f"mlkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False,
          verbose: Annotated[bool, typer.Option(
              "--verbose", help="Also show TensorFlow's, absl's, LiteRT's and libjpeg's own log lines and "
                                "library warnings (hidden by default; MLKIT_VERBOSE=1 does the same).")] = False,
          ) -> None:
    pass  # --verbose is acted on in main(), before TensorFlow can load


@app.command("classes")
def classes_cmd(
    query: Annotated[str, typer.Argument(help="Words to look for in class names, e.g. 'hot dog', or a MID.")],
    source: SourceOpt = None,
    cache_dir: CacheOpt = None,
    label_set: LabelSetOpt = "all",
    counts: Annotated[Optional[bool], typer.Option(
        "--counts/--no-counts",
        help="Count images per class. Needs the label files of --split (the v7 train file is 2.7 GB, "
             "downloaded and indexed once). Default: count with the label files already cached.")] = None,
    split: Annotated[str, typer.Option(help="Open Images splits to count images in (comma list).")]
        = "train,validation,test",
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many classes.")] = 25,
    json_out: JsonOpt = False,
) -> None:
    """Search Open Images class names: MIDs, display names and image counts."""
    from ..openimages.catalog import search_classes

    try:
        result = search_classes(query, source=source, cache_dir=cache_dir, label_set=label_set,
                                splits=_splits(split), counts=counts, limit=limit, progress=not json_out)
    except MlkitError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    if not result.matches:
        err.print(f"No class name contains \"{query}\".")
        raise typer.Exit(1)
    table = Table(title=f"Open Images classes matching \"{query}\"", title_justify="left")
    table.add_column("MID", style="cyan", no_wrap=True)
    table.add_column("Display name")
    for s in result.counted_splits:
        table.add_column(f"{s} images", justify="right")
    for m in result.matches:
        table.add_row(m.mid, m.name, *[f"{m.counts.get(s, 0):,}" for s in result.counted_splits])
    out.print(table)
    if result.more:
        out.print(f"... and {result.more} more (use --limit).")
    for note in result.notes:
        err.print(f"[dim]{note}[/]")


@app.command("build-dataset")
def build_dataset_cmd(
    positive: Annotated[Optional[str], typer.Option(
        "--positive", help="One class vs not (binary): an Open Images display name (any case) or a MID.")] = None,
    classes: Annotated[Optional[str], typer.Option(
        "--classes", help="Several classes, one folder each (comma list of display names or MIDs), e.g. "
                          "'Hamburger, Pizza'; instead of --positive. An image verified for two of them is "
                          "left out (status=ambiguous in manifest.csv).")] = None,
    other: Annotated[Optional[int], typer.Option(
        "--other", help="With --classes: add a class 'other' of this many images that show none of the "
                        "classes, their descendants or related classes.")] = None,
    other_classes: Annotated[str, typer.Option(
        "--other-classes", help="With --other: draw 'other' only from these classes (comma list): hard "
                                "negatives.")] = "",
    descendants: Annotated[bool, typer.Option(
        "--descendants/--no-descendants", help="With --classes: a class takes in its subcategories in Open "
                                               "Images' hierarchy (Sandwich: Submarine sandwich, Hamburger).")] = True,
    max_per_class: Annotated[Optional[int], typer.Option(
        "--max-per-class", help="With --classes: take at most this many images of each class (1 or more).")] = None,
    negatives: Annotated[Optional[int], typer.Option(
        help="How many negative images. Default: as many as positives.")] = None,
    negative_classes: Annotated[str, typer.Option(
        help="Draw negatives only from these classes (comma list), e.g. 'Pizza, Sandwich': hard "
             "negatives.")] = "",
    verified_negatives: Annotated[bool, typer.Option(
        "--verified-negatives", help="Only take negatives where a human verified the positive is absent "
                                     "(Confidence 0).")] = False,
    include_related: Annotated[bool, typer.Option(
        "--include-related", help="Count related classes (e.g. 'Hot dog bun', 'Chicago-style hot dog') as "
                                  "positives. They are always kept out of the negatives.")] = False,
    max_positives: Annotated[Optional[int], typer.Option(help="Take at most this many positives (1 or more).")] = None,
    balance: Annotated[str, typer.Option(
        help="weights (keep all, weigh classes in training) | undersample (drop from the larger class) | "
             "oversample (repeat the smaller class in training) | none.")] = "weights",
    split: Annotated[str, typer.Option(help="Open Images splits to draw from (comma list).")]
        = "train,validation,test",
    val: Annotated[float, typer.Option(help="Fraction of the dataset for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Fraction of the dataset for testing.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of every random choice: same inputs and seed, same dataset.")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Dataset folder name. Default: from the positive class.")]
        = None,
    data_dir: Annotated[Path, typer.Option(help="Where datasets are written: DATA_DIR/NAME/...")] = Path("data"),
    workers: Annotated[int, typer.Option(help="Concurrent downloads (1 or more).")] = 32,
    max_size: Annotated[Optional[int], typer.Option(help="Resize so the longer side is at most this "
                                                         "many pixels (16 or more).")] = None,
    crop: Annotated[bool, typer.Option("--crop", help="Crop positives to their largest bounding box.")] = False,
    crop_margin: Annotated[float, typer.Option(help="Margin added around a --crop box, as a fraction of "
                                                    "its size.")] = 0.1,
    source: SourceOpt = None,
    image_source: Annotated[Optional[str], typer.Option(
        help="Base URL of the CVDF image mirror. Default: https://open-images-dataset.s3.amazonaws.com/")] = None,
    cache_dir: CacheOpt = None,
    label_set: LabelSetOpt = "all",
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Download nothing: list the metadata files a build needs (size by HEAD, cached or not); once "
        "they are cached, also the images it would select and their estimated size."))]
        = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild a dataset made with other settings (the new one "
                                                        "is built beside it and replaces it when complete; a "
                                                        "folder mlkit did not make is never touched).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build a balanced, attributed image dataset from Open Images: one class vs not
    (--positive "Hot dog") or several classes (--classes "Hamburger, Pizza" --other 100).

    Writes DATA_DIR/NAME/{train,val,test}/<class>/<ImageID>.jpg with manifest.csv,
    ATTRIBUTION.md, dataset.json and preview.png. Rerun the same command to resume an
    interrupted build: finished images are not downloaded again.

    The first build downloads Open Images' metadata into the cache once: with the default
    splits about 5.6 GB (v7 train labels 2.74 GB, v6 train image list 2.68 GB, the rest
    about 0.2 GB). --split validation,test needs about 180 MB but holds far fewer
    positives. Each build prints the plan (files, sizes, cached or not) before it
    downloads anything; --dry-run shows it and downloads nothing.
    """
    from ..dataset.build import DatasetConfig, build_dataset

    config = DatasetConfig(
        positive=positive or "", classes=_names(classes or ""), other=other,
        other_classes=_names(other_classes), descendants=descendants, max_per_class=max_per_class, name=name, data_dir=data_dir, source=source, image_source=image_source,
        cache_dir=cache_dir, label_set=label_set, splits=_splits(split), negatives=negatives,
        negative_classes=tuple(n.strip() for n in negative_classes.split(",") if n.strip()),
        verified_negatives=verified_negatives, include_related=include_related,
        max_positives=max_positives, balance=balance, seed=seed, val=val, test=test, workers=workers,
        max_size=max_size, crop=crop, crop_margin=crop_margin, dry_run=dry_run, force=force,
        progress=not json_out)
    _run(lambda log: build_dataset(config, log=log), json_out, render_dataset,
         interrupted="Interrupted. Nothing half-written was left behind; run the same command again to resume.")


def render_dataset(result) -> None:
    if result.metadata_only:  # the plan itself went to stderr through the log, line by line
        out.print(f"Dry run: nothing downloaded. A build would first download "
                  f"{result.metadata_plan.download_bytes / 1e6:,.1f} MB of metadata "
                  f"({sum(1 for f in result.metadata_plan.files if not f.cached)} files, listed above).")
        for note in result.notes[:-1]:
            out.print(f"[yellow]note:[/] {note}")
        return
    table = Table(title=("Plan (dry run)" if result.dry_run else f"Dataset {result.path}"), title_justify="left")
    table.add_column("class")
    for s in ("train", "val", "test"):
        table.add_column(s, justify="right")
    table.add_column("total", justify="right")
    table.add_column("weight", justify="right")
    source = result.planned if result.dry_run else result.counts
    for c in result.classes:
        row = source.get(c, {})
        table.add_row(c, *[str(row.get(s, 0)) for s in ("train", "val", "test")], str(sum(row.values())),
                      f"{result.class_weights.get(c, 1.0):.3f}")
    out.print(table)
    if result.ambiguous:
        out.print(f"{sum(result.ambiguous.values())} images verified for two or more of the classes were left out "
                  "as ambiguous (" + ", ".join(f"{n} {k}" for k, n in result.ambiguous.items())
                  + "; listed in manifest.csv with status=ambiguous).")
    if result.dry_run:
        for item in result.plan[:5]:
            out.print(f"  {item['split']}/{item['class']}/{item['ImageID']}.jpg  <- {item['url']}", highlight=False, soft_wrap=True)
        if len(result.plan) > 5:
            out.print(f"  ... {len(result.plan) - 5} more (--json lists them all)")
        total = sum(sum(v.values()) for v in result.planned.values())
        out.print(f"Would download {total} images, about {result.estimated_bytes / 1e6:.1f} MB. "
                  "Run again without --dry-run to build it.")
    else:
        out.print(f"{result.downloaded} downloaded in {result.download_seconds:.1f} s, {result.skipped} already "
                  f"present, {result.duplicates} duplicates removed; {result.elapsed:.1f} s in all.")
        if result.failures:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(result.failures.items(), key=lambda kv: -kv[1]))
            out.print(f"[yellow]{sum(result.failures.values())} images could not be downloaded:[/] {reasons} "
                      "(listed in manifest.csv).")
        out.print(f"See {result.path / 'preview.png'} for a look at the data; credits in ATTRIBUTION.md.")
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}")


@app.command("mirror")
def mirror_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder to generate the mirror into.")] = Path("mlkit-mirror"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generated classes, labels and pictures.")] = 0,
) -> None:
    """Generate and serve the embedded Open Images mirror on 127.0.0.1 until Ctrl-C.

    Point other commands at it with --source and --image-source (printed at start).
    """
    import time

    from ..mirror import start_mirror

    server, info = start_mirror(folder, seed=seed, port=port)
    with server:
        out.print(f"Open Images mirror of {len(info.images)} images at {info.root}\n"
                  f"  --source {info.metadata_base}\n  --image-source {info.images_base}\nCtrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


# ------------------------------------------------------------------ train, evaluate, predict

def _quiet_tensorflow() -> None:
    """TensorFlow's C++ info lines and retracing warnings mean nothing to a user; keep
    stderr for our progress and messages (set TF_CPP_MIN_LOG_LEVEL yourself to see them)."""
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # coremltools: "Failed to load _MLModelProxy" off macOS (expected: the reference evaluator runs
    # Core ML files there) and its converters' progress bars; mlkit prints its own progress.
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


def _default_dataset(data_dir: Path = Path("data")) -> Path:
    # hidden folders are build-dataset's generations in progress (.NAME.mlkit-next), not datasets
    found = sorted(p.parent for p in data_dir.glob("*/dataset.json")
                   if not p.parent.name.startswith(".")) if data_dir.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise MlkitError(f"no DATASET_DIR given and no dataset under {data_dir}/: build one with "
                         "`mlkit build-dataset --positive ...`, or give its folder")
    raise MlkitError(f"no DATASET_DIR given and {len(found)} datasets under {data_dir}/ "
                     f"({', '.join(p.name for p in found)}): give one")


@app.command("train")
def train_cmd(
    dataset_dir: Annotated[Optional[Path], typer.Argument(
        help="A dataset folder written by `mlkit build-dataset` (data/<name>, with dataset.json), or any folder "
             "with one subfolder of images per class (DIR/<class>/*.jpg, or DIR/train/<class>/..., val/, test/), "
             "split with --val and --test. Default: the only dataset under ./data.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Model folder name under --output. Default: the dataset's "
                                                     "name.")] = None,
    output: Annotated[Path, typer.Option(help="Where models are written: OUTPUT/NAME/model.keras ...")]
        = Path("models"),
    epochs: Annotated[Optional[int], typer.Option(
        help="Epochs of training the head on the frozen backbone (early stopping may end sooner). Default: 30 "
             "with --fast (each epoch takes milliseconds on cached features), else 10.")] = None,
    fine_tune_layers: Annotated[int, typer.Option(
        help="Then fine-tune this many top layers of the backbone (MobileNetV2 has 154; e.g. 50). "
                    "0: no fine-tuning.")] = 0,
    fine_tune_epochs: Annotated[int, typer.Option(help="Epochs of fine-tuning (with --fine-tune-layers).")]
        = 5,
    batch_size: Annotated[int, typer.Option(help="Images per training step (the global batch with "
                                                        "--strategy).")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Adam learning rate of the head.")] = 1e-3,
    fine_tune_learning_rate: Annotated[float, typer.Option(help="Adam learning rate of fine-tuning.")]
        = 1e-5,
    alpha: Annotated[float, typer.Option(
        help="MobileNetV2 width: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4 have ImageNet weights; smaller is faster.")]
        = 1.0,
    image_size: Annotated[int, typer.Option(
        help="Input side in pixels (96, 128, 160, 192, 224 have ImageNet weights; larger sizes reuse the 224 "
             "weights: 288 or 320 often score 1-2 points higher on photos, at about twice the compute).")] = 224,
    weights: Annotated[str, typer.Option(
        help="Initial backbone weights: imagenet (Keras' loader; it looks in $KERAS_HOME/models, default "
             "~/.keras/models), none (random), or the path of an .h5 weights file or an mlkit model.keras.")]
        = "imagenet",
    dropout: Annotated[float, typer.Option(help="Dropout rate before the classifier.")] = 0.2,
    l2: Annotated[float, typer.Option(
        help="L2 penalty on the classifier's weights while training (0: none). It keeps the head from "
             "over-fitting a few hundred photos; it is not saved with the model.")] = 0.1,
    resize: Annotated[str, typer.Option(
        help="How an image becomes a square input: squash (the whole image scaled, aspect ratio ignored; "
             "Vision's .scaleFill) or center-crop (the largest centred square; Vision's .centerCrop).")] = "squash",
    seed: Annotated[int, typer.Option(help="Seed of every random choice; same data, settings and seed give the "
                                           "same model on the same machine.")] = 0,
    augment: Annotated[bool, typer.Option(
        "--augment/--no-augment", help="Random flips, rotations, zooms and contrast on training images "
                                       "(training only; slower: images go through the backbone every epoch).")]
        = False,
    fast: Annotated[Optional[bool], typer.Option(
        "--fast/--no-fast", help="Compute the frozen backbone's features once and train the head on them. "
                                 "Default: on unless --augment.")] = None,
    patience: Annotated[int, typer.Option(help="Stop a phase after this many epochs without a better "
                                                      "validation loss (the best epoch's weights are kept).")] = 3,
    strategy: Annotated[str, typer.Option(
        help="tf.distribute strategy: default (one device), mirrored (every local GPU, else the CPU), "
             "multi-worker (MultiWorkerMirroredStrategy from TF_CONFIG; Keras 3 trains only a single worker "
             "under it so far, see keras-team/keras#20585).")] = "default",
    resume: Annotated[Optional[bool], typer.Option(
        "--resume/--no-resume", help="Resume an interrupted run (--resume: insist; --no-resume: start over). "
                                     "Default: resume when an interrupted run with the same settings exists.")]
        = None,
    val: Annotated[float, typer.Option(
        help="A folder without dataset.json: the fraction of each class's images held out for validation "
             "(seeded by --seed, the same every run; recorded in model.json).")] = 0.1,
    test: Annotated[float, typer.Option(
        help="A folder without dataset.json: the fraction of each class's images held out for testing.")] = 0.1,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an earlier model in OUTPUT/NAME (and the exports and validation.json "
                            "beside it) when training finishes. Without it such a folder is refused.")] = False,
    quality: Annotated[str, typer.Option(
        help="fast: the head on the frozen backbone's features (seconds). best: then fine-tune the whole "
             "backbone with random resized crops, flips and colour jitter, a cosine learning rate and early "
             "stopping (about 10 minutes on 2 CPU cores for 500 photos; it sets --fine-tune-layers, "
             "--fine-tune-epochs 10, --fine-tune-learning-rate 1e-4 and --patience 4 unless you give them).")]
        = "fast",
    exclude: Annotated[Optional[Path], typer.Option(
        help="Leave these images out of the train and val splits: review.csv from `mlkit review`, or a text "
             "file with one ImageID, file name or dataset-relative path per line. The test split is kept.")]
        = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a MobileNetV2 classifier on a dataset: head first, then optional fine-tuning.

    Writes OUTPUT/NAME/ with model.keras, labels.txt, model.json (what later stages read),
    training.json and PNG plots, all at once when training is done. Interrupted? Run the
    same command again: it resumes from the last finished epoch.
    """
    _quiet_tensorflow()
    from ..training.train import TrainConfig, train

    try:
        config = TrainConfig(
            dataset_dir=dataset_dir if dataset_dir is not None else _default_dataset(), name=name,
            output_dir=output, epochs=epochs, fine_tune_epochs=fine_tune_epochs, fine_tune_layers=fine_tune_layers,
            batch_size=batch_size, learning_rate=learning_rate, fine_tune_learning_rate=fine_tune_learning_rate,
            alpha=alpha, image_size=image_size, weights=weights, dropout=dropout, l2=l2,
            resize_mode=resize.replace("-", "_"), seed=seed, augment=augment, fast=fast, patience=patience,
            strategy=strategy, resume=resume, overwrite=overwrite, progress=not json_out, val=val, test=test,
            quality=quality, exclude=exclude)
        config.validate()
    except MlkitError as exc:
        _fail(exc)
    _run(lambda log: train(config, log=log), json_out, render_training,
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
        help="Where review.csv and review.png are written. Default: reviews/<dataset name>.")] = None,
    top: Annotated[Optional[int], typer.Option(
        help="List at most N images. Default: all that cleanlab flags; a larger N continues down its "
             "label-quality ranking.")] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds of the out-of-fold predictions (2 or "
                                            "more).")] = 5,
    image_size: Annotated[int, typer.Option(help="Input side in pixels of the backbone that computes the "
                                                 "features.")] = 224,
    weights: Annotated[str, typer.Option(help="Backbone weights: imagenet, none, or a path (as for train).")]
        = "imagenet",
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Find training images whose label the model most disagrees with (likely label errors).

    Out-of-fold predictions over the train and val images (a logistic regression on the
    frozen backbone's features, k folds) ranked by cleanlab's find_label_issues. Writes
    review.csv (rank, file, image id, given and predicted label, confidence) and
    review.png (a contact sheet). Look at them, delete the rows you disagree with, then
    `mlkit train --exclude review.csv`.
    """
    _quiet_tensorflow()
    from ..training.review import ReviewConfig, review

    try:
        config = ReviewConfig(dataset_dir=dataset_dir if dataset_dir is not None else _default_dataset(),
                              output_dir=output, folds=folds, top=top, seed=seed, image_size=image_size,
                              weights=weights)
        config.validate()
    except MlkitError as exc:
        _fail(exc)
    _run(lambda log: review(config, log=log), json_out, render_review,
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
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    target_precision: Annotated[Optional[float], typer.Option(
        help="Two-class models: also find the decision threshold on the positive class's probability that "
                               "reaches this precision with the highest recall, e.g. 0.95.")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per inference batch.")] = 32,
    plots: Annotated[Optional[Path], typer.Option(
        help="Also write confusion_matrix.png and misclassified.png into this folder.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy, per-class precision / recall / F1, ROC AUC and confusion matrix of a model."""
    _quiet_tensorflow()
    from ..training.evaluate import evaluate, write_plots

    try:
        result = evaluate(model, data, split=split, target_precision=target_precision, batch_size=batch_size)
        written = write_plots(result, plots) if plots is not None else []
    except MlkitError as exc:
        _fail(exc)
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
    _quiet_tensorflow()
    from ..runtimes.predict import predict

    try:
        predictions = predict(model, images, top_k=top_k)
    except MlkitError as exc:
        _fail(exc)
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


INVALID_EXIT = 3   # an export outside its tolerance (2 is a user error)


def _coreml_spec(fmt: str) -> int:
    from ..export.coreml import SPEC_VERSION

    return SPEC_VERSION[fmt]


def _coreml_minimum(fmt: str) -> str:
    """The minimum OS of the Core ML files `export` writes in ``fmt`` (for --help)."""
    from ..export.coreml import SPEC_VERSION, minimum_os_text

    return minimum_os_text(SPEC_VERSION[fmt])


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Argument(help="A model folder written by `mlkit train` (models/<name>) or its "
                                               "model.keras.")],
    coreml: Annotated[bool, typer.Option("--coreml", help="Write a Core ML model for Xcode. With neither --coreml "
                                                          "nor --tflite, both are written.")] = False,
    tflite: Annotated[bool, typer.Option("--tflite", help="Write a TFLite model (+ labels.txt) for Android.")] = False,
    coreml_format: Annotated[str, typer.Option(
        help=f"neuralnetwork: <Name>.mlmodel, the single file Xcode takes (needs "
             f"{_coreml_minimum('neuralnetwork')}: Core ML specification version "
             f"{_coreml_spec('neuralnetwork')}). mlprogram: <Name>.mlpackage (needs "
             f"{_coreml_minimum('mlprogram')}). The export prints the minimum of the file it wrote.")]
        = "neuralnetwork",
    precision: Annotated[str, typer.Option(
        help="Weights: fp32 (exact), fp16 (half the size), int8 (a quarter; for TFLite full-integer, calibrated "
             "on training images).")] = "fp32",
    quantize: Annotated[Optional[str], typer.Option(
        help="TFLite only, overrides --precision: none, fp16, dynamic (int8 weights, float maths) or int8 "
             "(integers throughout, uint8 input and output).")] = None,
    name: Annotated[Optional[str], typer.Option(
        help="The Core ML model's name, which Xcode turns into a Swift class. Default: from the classes, a "
             "catch-all (other, not_*) left out (hot_dog -> HotDogClassifier; hamburger, sandwich -> "
             "HamburgerSandwichClassifier).")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="A folder for the files, or one file (e.g. ios_demo/HotDogApp/"
                               "HotDogClassifier.mlmodel). Default: the model's folder.")] = None,
    samples: Annotated[Optional[int], typer.Option(
        help="Validate on this many test images (default: the whole test split).")] = None,
    data: Annotated[Optional[Path], typer.Option(
        help="Dataset folder for validation images and int8 calibration. Default: the model's own (model.json).")]
        = None,
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip validation (not recommended).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Export a trained model to Core ML and/or TFLite, then run every file written in its own
    runtime on the test images and compare it with Keras.

    Each file must stay within the tolerance of its precision (fp32: max |difference in
    probability| <= 1e-4 and the same top-1 class on every image; fp16: <= 1e-2 and 99.5%;
    int8: 98% agreement and at most 1 point of accuracy lost); otherwise it is reported
    INVALID and the command exits with code 3. Results go to validation.json in the model's
    folder. Core ML runs in Core ML on macOS, elsewhere in mlkit's reference evaluator."""
    _quiet_tensorflow()
    from ..export import ExportOptions, export_model

    options = ExportOptions(coreml=coreml, tflite=tflite, coreml_format=coreml_format, precision=precision,
                            quantize=quantize, name=name, output=output, validate=not no_validate,
                            samples=samples, data_dir=data)
    try:
        report = export_model(model, options, log=None if json_out else lambda m: err.print(m, highlight=False))
    except MlkitError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted: no partial model file was left behind.")
        raise typer.Exit(130)
    if json_out:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for e in report.exports:
            for w in getattr(e, "warnings", []):
                err.print(f"warning: {w}", highlight=False)
            note = getattr(e, "metadata_note", "")
            if note:
                err.print(note, highlight=False)
        if report.validation is not None:
            from ..export.validate import render_table

            out.print(render_table(report.validation))
            out.print(f"Results: {report.validation_json}")
        for e in report.exports:
            out.print(f"Wrote {e.path} ({e.size_bytes / 1e6:.2f} MB)")
    if not report.valid:
        raise typer.Exit(INVALID_EXIT)


@app.command("validate")
def validate_cmd(
    model_file: Annotated[Path, typer.Argument(help="An exported file: .mlmodel, .mlpackage or .tflite.")],
    against: Annotated[Optional[Path], typer.Option(
        help="The model.keras it was exported from. Default: the one beside the file.")] = None,
    data: Annotated[Optional[Path], typer.Option(
        help="Dataset folder whose test split is run. Default: the model's own (model.json).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Use this many test images (default: all).")] = None,
    precision: Annotated[Optional[str], typer.Option(
        help="Hold the file to this precision's tolerance (fp32, fp16, int8). Default: what the file says.")]
        = None,
    json_out: JsonOpt = False,
) -> None:
    """Check that an exported file gives the Keras model's answers: max and mean absolute
    probability difference, top-1 agreement, accuracy of each, size and latency. Exits with
    code 3 when the file is outside the tolerance of its precision."""
    _quiet_tensorflow()
    from ..export.validate import render_table, validate

    try:
        report = validate(model_file, against=against, data_dir=data, samples=samples, precision=precision)
    except MlkitError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(report.to_json(), indent=2))
    else:
        out.print(render_table(report))
    if not report.valid:
        raise typer.Exit(INVALID_EXIT)


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its mirror, cache and dataset.")]
        = Path("mlkit-demo"),
    json_out: JsonOpt = False,
) -> None:
    """Run the whole job offline on the embedded mirror: a 'Hot dog' dataset, then a small
    classifier trained on it and evaluated, end to end."""
    _quiet_tensorflow()
    from ..demo import run_demo

    try:
        result = run_demo(workdir, progress=not json_out,
                          log=None if json_out else lambda m: err.print(m, highlight=False))
    except MlkitError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    render_dataset(result.dataset)
    if result.training is not None:
        out.print()
        render_training(result.training)
    if result.evaluation is not None:
        ev = result.evaluation
        out.print(f"\n`mlkit evaluate {result.training.path}`: accuracy {ev.accuracy:.3f} on {ev.n} test images"
                  + ("" if ev.roc_auc is None else f", ROC AUC {ev.roc_auc:.3f}") + ".")
    if result.export is not None and result.export.validation is not None:
        from ..export.validate import render_table

        out.print()
        out.print(render_table(result.export.validation))
    out.print()
    out.print(render_demo_summary(result))
    if result.export is not None and not result.export.valid:
        raise typer.Exit(INVALID_EXIT)


def render_demo_summary(result) -> Table:
    """One table: what each stage made, and how long it took."""
    t = Table(title="mlkit demo: summary", title_justify="left")
    t.add_column("stage")
    t.add_column("result", overflow="fold")
    t.add_column("seconds", justify="right")
    ds = result.dataset
    images = sum(n for per_split in ds.counts.values() for n in per_split.values())
    t.add_row("build-dataset", f"{ds.path}: {images} images, {len(ds.counts)} classes",
              f"{result.seconds.get('dataset', 0):.0f}")
    if result.training is not None:
        ev = result.evaluation
        t.add_row("train + evaluate", f"{result.training.path}: test accuracy {ev.accuracy:.1%} ({ev.n} images)",
                  f"{result.seconds.get('train', 0):.0f}")
    if result.export is not None:
        rows = {r.file: r for r in (result.export.validation.rows if result.export.validation else [])}
        lines = []
        for e in result.export.exports:
            r = rows.get(str(e.path))
            verdict = "" if r is None else f": {r.status}, max|Δp| {r.max_abs_diff:.1e}, agreement {r.agreement:.0%}"
            lines.append(f"{e.path} ({e.size_bytes / 1e6:.1f} MB){verdict}")
        t.add_row("export + validate", "\n".join(lines), f"{result.seconds.get('export', 0):.0f}")
    total = sum(result.seconds.values())
    t.add_row("total", "", f"{total:.0f}", end_section=True)
    return t


def main() -> None:
    from ..quiet import quiet_unless_verbose

    quiet_unless_verbose(sys.argv[1:])
    try:
        app()
    except MlkitError as exc:  # a library error raised outside a command's own handler
        err.print(f"error: {_message(exc)}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)

