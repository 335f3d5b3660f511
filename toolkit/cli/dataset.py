"""The Open Images commands: `classes`, `build-dataset`, and `mirror` (the embedded stand-in)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..dataset.config import DatasetConfig
from ..errors import MlkitError
from .app import CacheOpt, JsonOpt, LabelSetOpt, SourceOpt, app, err, fail, out, reporter_for, run_library
from .configs import comma_list, config_from, defaults

D = defaults(DatasetConfig)


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
                                splits=comma_list(split), counts=counts, limit=limit,
                                reporter=reporter_for(json_out))
    except MlkitError as exc:
        fail(exc)
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


_PositiveOpt = Annotated[Optional[str], typer.Option(
    "--positive", help="One class vs not (binary): an Open Images display name (any case) or a MID.")]
_ClassesOpt = Annotated[Optional[str], typer.Option(
    "--classes", help="Several classes, one folder each (comma list of display names or MIDs), e.g. "
                      "'Hamburger, Pizza'; instead of --positive. An image verified for two of them is "
                      "left out (status=ambiguous in manifest.csv).")]
_OtherOpt = Annotated[Optional[int], typer.Option(
    "--other", help="With --classes: add a class 'other' of this many images that show none of the "
                    "classes, their descendants or related classes.")]
_OtherClassesOpt = Annotated[str, typer.Option(
    "--other-classes", help="With --other: draw 'other' only from these classes (comma list): hard "
                            "negatives.")]
_DescendantsOpt = Annotated[bool, typer.Option(
    "--descendants/--no-descendants", help="With --classes: a class takes in its subcategories in Open "
                                           "Images' hierarchy (Sandwich: Submarine sandwich, Hamburger).")]
_MaxPerClassOpt = Annotated[Optional[int], typer.Option(
    "--max-per-class", help="With --classes: take at most this many images of each class (1 or more).")]
_NegativesOpt = Annotated[Optional[int], typer.Option(
    help="How many negative images. Default: as many as positives.")]
_NegativeClassesOpt = Annotated[str, typer.Option(
    help="Draw negatives only from these classes (comma list), e.g. 'Pizza, Sandwich': hard "
         "negatives.")]
_VerifiedNegativesOpt = Annotated[bool, typer.Option(
    "--verified-negatives", help="Only take negatives where a human verified the positive is absent "
                                 "(Confidence 0).")]
_IncludeRelatedOpt = Annotated[bool, typer.Option(
    "--include-related", help="Count related classes (e.g. 'Hot dog bun', 'Chicago-style hot dog') as "
                              "positives. They are always kept out of the negatives.")]
_MaxPositivesOpt = Annotated[Optional[int], typer.Option(help="Take at most this many positives (1 or more).")]
_BalanceOpt = Annotated[str, typer.Option(
    help="weights (keep all, weigh classes in training) | undersample (drop from the larger class) | "
         "oversample (repeat the smaller class in training) | none.")]
_SplitOpt = Annotated[str, typer.Option(help="Open Images splits to draw from (comma list).")]
_SeedOpt = Annotated[int, typer.Option(help="Seed of every random choice: same inputs and seed, same dataset.")]
_NameOpt = Annotated[Optional[str], typer.Option(help="Dataset folder name. Default: from the positive class.")]
_DataDirOpt = Annotated[Path, typer.Option(help="Where datasets are written: DATA_DIR/NAME/...")]
_MaxSizeOpt = Annotated[Optional[int], typer.Option(help="Resize so the longer side is at most this "
                                                     "many pixels (16 or more).")]
_CropOpt = Annotated[bool, typer.Option("--crop", help="Crop positives to their largest bounding box.")]
_CropMarginOpt = Annotated[float, typer.Option(help="Margin added around a --crop box, as a fraction of "
                                                "its size.")]
_ImageSourceOpt = Annotated[Optional[str], typer.Option(
    help="Base URL of the CVDF image mirror. Default: https://open-images-dataset.s3.amazonaws.com/")]
_DryRunOpt = Annotated[bool, typer.Option("--dry-run", help=(
    "Download nothing: list the metadata files a build needs (size by HEAD, cached or not); once "
    "they are cached, also the images it would select and their estimated size."))]
_ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild a dataset made with other settings (the new one "
                                                    "is built beside it and replaces it when complete; a "
                                                    "folder mlkit did not make is never touched).")]
_ExcludeOpt = Annotated[Optional[Path], typer.Option(
    help="Leave these images out, and take others in their place: review.csv from `mlkit review`, or a text file "
         "with one Open Images ImageID (or a file named after one) per line.")]


@app.command("build-dataset")
def build_dataset_cmd(
    positive: _PositiveOpt = None,
    classes: _ClassesOpt = None,
    other: _OtherOpt = D.other,
    other_classes: _OtherClassesOpt = ", ".join(D.other_classes),
    descendants: _DescendantsOpt = D.descendants,
    max_per_class: _MaxPerClassOpt = D.max_per_class,
    negatives: _NegativesOpt = D.negatives,
    negative_classes: _NegativeClassesOpt = ", ".join(D.negative_classes),
    verified_negatives: _VerifiedNegativesOpt = D.verified_negatives,
    include_related: _IncludeRelatedOpt = D.include_related,
    max_positives: _MaxPositivesOpt = D.max_positives,
    balance: _BalanceOpt = D.balance,
    split: _SplitOpt = ",".join(D.splits),
    val: Annotated[float, typer.Option(help="Fraction of the dataset for validation.")] = D.val,
    test: Annotated[float, typer.Option(help="Fraction of the dataset for testing.")] = D.test,
    seed: _SeedOpt = D.seed,
    name: _NameOpt = D.name,
    data_dir: _DataDirOpt = D.data_dir,
    workers: Annotated[int, typer.Option(help="Concurrent downloads (1 or more).")] = D.workers,
    max_size: _MaxSizeOpt = D.max_size,
    crop: _CropOpt = D.crop,
    crop_margin: _CropMarginOpt = D.crop_margin,
    source: SourceOpt = D.source,
    image_source: _ImageSourceOpt = D.image_source,
    cache_dir: CacheOpt = D.cache_dir,
    label_set: LabelSetOpt = D.label_set,
    dry_run: _DryRunOpt = D.dry_run,
    force: _ForceOpt = D.force,
    exclude: _ExcludeOpt = D.exclude,
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
    from ..dataset.build import build_dataset

    config = config_from(DatasetConfig, locals(), positive=positive or "", classes=comma_list(classes),
                         other_classes=comma_list(other_classes), splits=comma_list(split),
                         negative_classes=comma_list(negative_classes))
    run_library(lambda reporter: build_dataset(config, reporter=reporter), json_out, render_dataset,
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
