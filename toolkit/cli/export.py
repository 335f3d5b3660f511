"""The export commands: `export` (Core ML, TFLite, then validation) and `validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import MlkitError
from ..export import ExportOptions
from .app import INVALID_EXIT, JsonOpt, app, err, fail, out, quiet_tensorflow, reporter_for
from .configs import config_from, defaults

E = defaults(ExportOptions)


def _coreml_spec(fmt: str) -> int:
    from ..export.coreml import SPEC_VERSION

    return SPEC_VERSION[fmt]


def _coreml_minimum(fmt: str) -> str:
    """The minimum OS of the Core ML files `export` writes in ``fmt`` (for --help)."""
    from ..export.coreml import SPEC_VERSION, minimum_os_text

    return minimum_os_text(SPEC_VERSION[fmt])


_CoremlOpt = Annotated[bool, typer.Option("--coreml", help="Write a Core ML model for Xcode. With neither --coreml "
                                                      "nor --tflite, both are written.")]
_TfliteOpt = Annotated[bool, typer.Option("--tflite", help="Write a TFLite model (+ labels.txt) for Android.")]
_CoremlFormatOpt = Annotated[str, typer.Option(
    help=f"neuralnetwork: <Name>.mlmodel, the single file Xcode takes (needs "
         f"{_coreml_minimum('neuralnetwork')}: Core ML specification version "
         f"{_coreml_spec('neuralnetwork')}). mlprogram: <Name>.mlpackage (needs "
         f"{_coreml_minimum('mlprogram')}). The export prints the minimum of the file it wrote.")]
_PrecisionOpt = Annotated[str, typer.Option(
    help="Weights: fp32 (exact), fp16 (half the size), int8 (a quarter; for TFLite full-integer, calibrated "
         "on training images).")]
_QuantizeOpt = Annotated[Optional[str], typer.Option(
    help="TFLite only, overrides --precision: none, fp16, dynamic (int8 weights, float maths) or int8 "
         "(integers throughout, uint8 input and output).")]
_NameOpt = Annotated[Optional[str], typer.Option(
    help="The Core ML model's name, which Xcode turns into a Swift class. Default: from the classes, a "
         "catch-all (other, not_*) left out (hot_dog -> HotDogClassifier; hamburger, sandwich -> "
         "HamburgerSandwichClassifier).")]
_OutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="A folder for the files, or one file (e.g. ios_demo/HotDogApp/"
                           "HotDogClassifier.mlmodel). Default: the model's folder.")]
_SamplesOpt = Annotated[Optional[int], typer.Option(
    help="Validate on this many test images (default: the whole test split).")]
_DataOpt = Annotated[Optional[Path], typer.Option(
    help="Dataset folder for validation images and int8 calibration. Default: the model's own (model.json).")]
_NoValidateOpt = Annotated[bool, typer.Option("--no-validate", help="Skip validation (not recommended).")]


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Argument(help="A model folder written by `mlkit train` (models/<name>) or its "
                                               "model.keras.")],
    coreml: _CoremlOpt = E.coreml,
    tflite: _TfliteOpt = E.tflite,
    coreml_format: _CoremlFormatOpt = E.coreml_format,
    precision: _PrecisionOpt = E.precision,
    quantize: _QuantizeOpt = E.quantize,
    name: _NameOpt = E.name,
    output: _OutputOpt = E.output,
    samples: _SamplesOpt = E.samples,
    data: _DataOpt = E.data_dir,
    no_validate: _NoValidateOpt = not E.validate,
    json_out: JsonOpt = False,
) -> None:
    """Export a trained model to Core ML and/or TFLite, then run every file written in its own
    runtime on the test images and compare it with Keras.

    Each file must stay within the tolerance of its precision (fp32: max |difference in
    probability| <= 1e-4 and the same top-1 class on every image; fp16: <= 1e-2 and 99.5%;
    int8: 98% agreement and at most 1 point of accuracy lost); otherwise it is reported
    INVALID and the command exits with code 3. Results go to validation.json in the model's
    folder. Core ML runs in Core ML on macOS, elsewhere in mlkit's reference evaluator."""
    quiet_tensorflow()
    from ..export import export_model

    options = config_from(ExportOptions, locals(), validate=not no_validate, data_dir=data)
    try:
        report = export_model(model, options, reporter=reporter_for(json_out))
    except MlkitError as exc:
        fail(exc)
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
    quiet_tensorflow()
    from ..export.validate import validate

    try:
        report = validate(model_file, against=against, data_dir=data, samples=samples, precision=precision)
    except MlkitError as exc:
        fail(exc)
    if json_out:
        print(json.dumps(report.to_json(), indent=2))
    else:
        out.print(render_table(report))
    if not report.valid:
        raise typer.Exit(INVALID_EXIT)


# ------------------------------------------------------------------------------ rendering

def render_table(report) -> Group:
    """A compact rich Table (fits 80 columns): Keras first, then one row per exported file;
    the reasons for an INVALID file and what "reference" means follow below it."""
    t = Table(title=f"Validation against Keras: {report.images.source}", title_justify="left", box=box.SIMPLE_HEAD,
              padding=(0, 0), show_edge=False)
    for col in ("file", "runtime", "prec", "max|Δp|", "agree", "acc", "MB", "ms/img", "status"):
        t.add_column(col, justify="left" if col in ("file", "runtime", "status") else "right",
                     no_wrap=col != "file", overflow="fold", min_width=20 if col == "file" else None)
    ref = report.reference
    t.add_row(ref.path.name, "Keras", "fp32", "", "", _pct(ref.accuracy), f"{ref.size_bytes / 1e6:.1f}",
              f"{ref.latency_ms:.0f}", "")
    notes = []
    for r in report.rows:
        runtime = "reference" if r.runtime.startswith("reference") else r.runtime
        status = "[green]VALID[/green]" if r.valid else "[bold red]INVALID[/bold red]"
        t.add_row(Path(r.file).name, runtime, r.precision, _sci(r.max_abs_diff), _pct(r.agreement), _pct(r.accuracy), f"{r.size_bytes / 1e6:.1f}", f"{r.latency_ms:.0f}", status)
        if not r.valid:
            notes.append(f"INVALID {r.file}: {'; '.join(r.problems)} (tolerance for {r.precision}: {r.tolerance})")
    if any(r.runtime.startswith("reference") for r in report.rows):
        notes.append("reference: mlkit's NumPy Core ML evaluator, which runs the exported file's own layers "
                     "(Core ML itself runs only on macOS)")
    return Group(t, *(Text(n) for n in notes))


def _sci(x: float) -> str:
    """1.2e-5 rather than 1.2e-05: narrow columns."""
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e+") if x else "0"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"
