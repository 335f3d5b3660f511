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
from rich.table import Table

from . import __version__
from .errors import MlkitError

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


def _fail(exc: MlkitError) -> None:
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
    raise typer.Exit(exc.exit_code)


def _splits(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _version(value: bool) -> None:
    if value:
        out.print(f"mlkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    pass


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
    from .catalog import search_classes

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
    positive: Annotated[str, typer.Option(
        "--positive", help="The class to recognise: an Open Images display name (any case) or a MID.")],
    negatives: Annotated[Optional[int], typer.Option(
        min=0, help="How many negative images. Default: as many as positives.")] = None,
    negative_classes: Annotated[str, typer.Option(
        help="Draw negatives only from these classes (comma list), e.g. 'Pizza, Sandwich': hard "
             "negatives.")] = "",
    verified_negatives: Annotated[bool, typer.Option(
        "--verified-negatives", help="Only take negatives where a human verified the positive is absent "
                                     "(Confidence 0).")] = False,
    include_related: Annotated[bool, typer.Option(
        "--include-related", help="Count related classes (e.g. 'Hot dog bun', 'Chicago-style hot dog') as "
                                  "positives. They are always kept out of the negatives.")] = False,
    max_positives: Annotated[Optional[int], typer.Option(min=1, help="Take at most this many positives.")] = None,
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
    workers: Annotated[int, typer.Option(min=1, max=256, help="Concurrent downloads.")] = 32,
    max_size: Annotated[Optional[int], typer.Option(min=16, help="Resize so the longer side is at most this "
                                                                 "many pixels.")] = None,
    crop: Annotated[bool, typer.Option("--crop", help="Crop positives to their largest bounding box.")] = False,
    crop_margin: Annotated[float, typer.Option(help="Margin added around a --crop box, as a fraction of "
                                                    "its size.")] = 0.1,
    source: SourceOpt = None,
    image_source: Annotated[Optional[str], typer.Option(
        help="Base URL of the CVDF image mirror. Default: https://open-images-dataset.s3.amazonaws.com/")] = None,
    cache_dir: CacheOpt = None,
    label_set: LabelSetOpt = "all",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be downloaded, download nothing.")]
        = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild a dataset made with other settings.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build a balanced, attributed image dataset (positive vs not) from Open Images.

    Writes DATA_DIR/NAME/{train,val,test}/<class>/<ImageID>.jpg with manifest.csv,
    ATTRIBUTION.md, dataset.json and preview.png. Rerun the same command to resume an
    interrupted build: finished images are not downloaded again.
    """
    from .dataset import DatasetConfig, build_dataset

    config = DatasetConfig(
        positive=positive, name=name, data_dir=data_dir, source=source, image_source=image_source,
        cache_dir=cache_dir, label_set=label_set, splits=_splits(split), negatives=negatives,
        negative_classes=tuple(n.strip() for n in negative_classes.split(",") if n.strip()),
        verified_negatives=verified_negatives, include_related=include_related,
        max_positives=max_positives, balance=balance, seed=seed, val=val, test=test, workers=workers,
        max_size=max_size, crop=crop, crop_margin=crop_margin, dry_run=dry_run, force=force,
        progress=not json_out)
    try:
        result = build_dataset(config, log=None if json_out else lambda m: err.print(m, highlight=False))
    except MlkitError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("Interrupted. Nothing half-written was left behind; run the same command again to resume.")
        raise typer.Exit(130)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    render_dataset(result)


def render_dataset(result) -> None:
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
    if result.dry_run:
        for item in result.plan[:5]:
            out.print(f"  {item['split']}/{item['class']}/{item['ImageID']}.jpg  <- {item['url']}", highlight=False, soft_wrap=True)
        if len(result.plan) > 5:
            out.print(f"  ... {len(result.plan) - 5} more (--json lists them all)")
        total = sum(sum(v.values()) for v in result.planned.values())
        out.print(f"Would download {total} images, about {result.estimated_bytes / 1e6:.1f} MB. "
                  "Run again without --dry-run to build it.")
    else:
        out.print(f"{result.downloaded} downloaded, {result.skipped} already present, "
                  f"{result.duplicates} duplicates removed, in {result.elapsed:.1f} s.")
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

    from .mirror import start_mirror

    server, info = start_mirror(folder, seed=seed, port=port)
    with server:
        out.print(f"Open Images mirror of {len(info.images)} images at {info.root}\n"
                  f"  --source {info.metadata_base}\n  --image-source {info.images_base}\nCtrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its mirror, cache and dataset.")]
        = Path("mlkit-demo"),
    json_out: JsonOpt = False,
) -> None:
    """Run the whole job offline on the embedded mirror: a 'Hot dog' dataset, end to end."""
    from .demo import run_demo

    try:
        result = run_demo(workdir, progress=not json_out,
                          log=None if json_out else lambda m: err.print(m, highlight=False))
    except MlkitError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(result.to_json(), indent=2))
        return
    render_dataset(result.dataset)


def main() -> None:
    try:
        app()
    except MlkitError as exc:  # a library error raised outside a command's own handler
        err.print(f"error: {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
