"""`mlkit demo`: the whole job, offline, and one table of what each stage made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import MlkitError
from .app import INVALID_EXIT, JsonOpt, app, fail, out, quiet_tensorflow, reporter_for
from .dataset import render_dataset
from .export import render_table
from .training import render_training


@app.command("demo")
def demo_cmd(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its mirror, cache and dataset.")]
        = Path("mlkit-demo"),
    json_out: JsonOpt = False,
) -> None:
    """Run the whole job offline on the embedded mirror: a 'Hot dog' dataset, then a small
    classifier trained on it and evaluated, end to end."""
    quiet_tensorflow()
    from ..demo import run_demo

    try:
        result = run_demo(workdir, reporter=reporter_for(json_out))
    except MlkitError as exc:
        fail(exc)
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
