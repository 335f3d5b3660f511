"""``validate``: prove an exported file is the model it came from.

Each exported file (``.mlmodel``, ``.mlpackage``, ``.tflite``) runs in its own runtime —
Core ML (macOS) or the reference evaluator, LiteRT — on real images (the dataset's test
split), and is compared with the Keras model on the same pixels: the largest and the mean
absolute difference of the class probabilities, top-1 agreement, the accuracy of each,
file size and latency per image. Every runtime gets identical pixels (read and resized
once, as in training), so the comparison isolates the export, not the resizing.

A file is VALID when it is within the tolerance of its precision (``TOLERANCES``); the
results go to ``validation.json`` in the model's folder, beside ``model.keras``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MlkitError, ParameterError
from ..fsutil import atomic_write_text, path_size
from ..training.spec import KERAS_FILE, ModelCard, read_model_card

VALIDATION_JSON = "validation.json"
EXPORT_SUFFIXES = (".mlmodel", ".mlpackage", ".tflite")
LATENCY_RUNS = 5


@dataclass(frozen=True)
class Tolerance:
    """What an export of a given precision must meet against Keras (None: not checked)."""

    max_abs: float | None        # largest |p_export - p_keras| over all images and classes
    min_agreement: float         # share of images with the same top-1 class
    max_accuracy_drop: float | None = None   # accuracy points (0.01 = 1 point)

    def describe(self) -> str:
        parts = []
        if self.max_abs is not None:
            parts.append(f"max|Δp| ≤ {self.max_abs:g}")
        parts.append(f"agreement ≥ {self.min_agreement:.1%}")
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop ≤ {self.max_accuracy_drop * 100:g} pt")
        return ", ".join(parts)


TOLERANCES = {
    "fp32": Tolerance(max_abs=1e-4, min_agreement=1.0),
    "fp16": Tolerance(max_abs=1e-2, min_agreement=0.995),
    "int8": Tolerance(max_abs=None, min_agreement=0.98, max_accuracy_drop=0.01),
}
# TFLite's dynamic-range quantization stores int8 weights: held to the int8 tolerance.
PRECISION_ALIASES = {"none": "fp32", "dynamic": "int8"}


@dataclass
class ValidationImages:
    """The pixels every runtime sees, with their true class indices (-1 where unknown)."""

    pixels: np.ndarray          # (n, size, size, 3) float32, whole values 0..255
    labels: np.ndarray          # int64
    paths: list[Path]
    source: str                 # e.g. "data/hot_dog test split, 20 of 20 images"


@dataclass
class Reference:
    """The Keras model's answers on the validation images."""

    path: Path
    probs: np.ndarray
    accuracy: float | None
    latency_ms: float
    size_bytes: int


@dataclass
class ValidationRow:
    file: str
    kind: str                   # "Core ML neuralnetwork", "Core ML mlprogram", "TFLite"
    precision: str
    runtime: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    agreement: float
    accuracy: float | None
    keras_accuracy: float | None
    size_bytes: int
    latency_ms: float
    tolerance: str
    valid: bool
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def to_json(self) -> dict:
        out = asdict(self)
        out["status"] = self.status
        for key in ("max_abs_diff", "mean_abs_diff"):
            out[key] = float(f"{out[key]:.3g}")
        out["latency_ms"] = round(self.latency_ms, 2)
        return out


@dataclass
class ValidationReport:
    reference: Reference
    images: ValidationImages
    rows: list[ValidationRow]

    @property
    def valid(self) -> bool:
        return all(r.valid for r in self.rows)

    def to_json(self) -> dict:
        return {"valid": self.valid, "images": self.images.source, "samples": len(self.images.labels),
                "keras": {"file": str(self.reference.path), "accuracy": self.reference.accuracy,
                          "latency_ms": round(self.reference.latency_ms, 2),
                          "size_bytes": self.reference.size_bytes},
                "files": [r.to_json() for r in self.rows]}


# --------------------------------------------------------------------------- images
def validation_images(card: ModelCard, data_dir: Path | str | None = None, samples: int | None = None,
                      split: str = "test", seed: int = 0) -> ValidationImages:
    """Up to ``samples`` images of ``split`` of the model's dataset (or ``data_dir``), read
    and resized exactly as in training. The subset is stratified and seeded, so the same
    call picks the same images."""
    from ..training.data import load_images, model_split

    if samples is not None and samples < 1:
        raise ParameterError("samples", samples, "must be at least 1")
    info, files = model_split(card.dataset, card.spec.labels, data_dir, split, "validate")
    idx = np.arange(len(files))
    if samples is not None and samples < len(files):
        idx = _stratified(files.labels, samples, seed)
    paths = [files.paths[i] for i in idx]
    pixels = load_images(paths, card.spec)
    return ValidationImages(pixels=pixels, labels=files.labels[idx], paths=paths,
                            source=f"{info.path} {split} split, {len(idx)} of {len(files)} images")


def _stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices, each class in proportion (at least one of each where n allows)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Round-robin over classes in a seeded order: proportional enough, and every class shows up.
    by_class = [order[labels[order] == c].tolist() for c in np.unique(labels)]
    chosen: list[int] = []
    weights = np.array([len(b) for b in by_class], dtype=float)
    quota = np.maximum(1, np.floor(weights / weights.sum() * n)).astype(int)
    for b, q in zip(by_class, quota):
        chosen.extend(b[:q])
    taken = set(chosen)
    rest = [i for i in order if i not in taken]
    chosen.extend(rest[:max(0, n - len(chosen))])
    return np.sort(np.asarray(chosen[:n], dtype=np.int64))


# --------------------------------------------------------------------------- running
def latency_ms(runner, pixels: np.ndarray, runs: int = LATENCY_RUNS) -> float:
    """Median wall time of one single-image prediction, after one warm-up call."""
    if len(pixels) == 0:
        return float("nan")
    runner.predict(pixels[:1])
    times = []
    for i in range(runs):
        x = pixels[i % len(pixels)][None]
        t0 = time.perf_counter()
        runner.predict(x)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run_reference(keras_path: Path, card: ModelCard, images: ValidationImages, runner=None) -> Reference:
    """The Keras model's answers on ``images`` (``runner``: a KerasRunner already holding it)."""
    from ..runtimes.predict import KerasRunner

    runner = runner or KerasRunner(keras_path, card)
    probs = runner.predict(images.pixels)
    return Reference(path=keras_path, probs=probs, accuracy=_accuracy(probs, images.labels, card),
                     latency_ms=latency_ms(runner, images.pixels), size_bytes=path_size(keras_path))


def _accuracy(probs: np.ndarray, labels: np.ndarray, card: ModelCard) -> float | None:
    from ..runtimes.predict import decide

    known = labels >= 0
    if not known.any():
        return None
    return float((decide(probs[known], card.spec) == labels[known]).mean())




def open_export(path: Path, card: ModelCard):
    """(runner, kind, precision written in the file or None) for an exported file."""
    suffix = path.suffix.lower()
    if suffix in (".mlmodel", ".mlpackage"):
        from ..runtimes.coreml import CoreMLRunner

        runner = CoreMLRunner(path, card)
        fmt = "mlprogram" if suffix == ".mlpackage" else "neuralnetwork"
        return runner, f"Core ML {fmt}", runner.precision
    if suffix == ".tflite":
        from ..runtimes.litert import TFLiteRunner

        runner = TFLiteRunner(path, card)
        return runner, "TFLite", runner.precision
    if suffix == ".keras":
        raise MlkitError(f"{path} is the Keras model itself: validate an exported file "
                         "(.mlmodel, .mlpackage or .tflite) against it")
    raise MlkitError(f"{path}: unknown model format {suffix or '(no suffix)'}; validate takes "
                     f"{', '.join(EXPORT_SUFFIXES)}")


def tflite_precision(path: Path) -> str:
    """fp32 / fp16 / int8 / dynamic, read from the tensors of a .tflite file."""
    from ai_edge_litert.interpreter import Interpreter

    from ..runtimes.litert import interpreter_precision

    return interpreter_precision(Interpreter(model_path=str(path)))


def tolerance_for(precision: str) -> Tolerance:
    key = PRECISION_ALIASES.get(precision, precision)
    if key not in TOLERANCES:
        raise MlkitError(f"unknown precision {precision!r}; choose {', '.join(TOLERANCES)}")
    return TOLERANCES[key]


def compare(path: Path, card: ModelCard, images: ValidationImages, reference: Reference,
            precision: str | None = None) -> ValidationRow:
    """Run one exported file on the validation images and hold it to its tolerance."""
    runner, kind, written = open_export(Path(path), card)
    precision = precision or written or "fp32"
    tol = tolerance_for(precision)
    probs = np.asarray(runner.predict(images.pixels), dtype=np.float64)
    ref = reference.probs.astype(np.float64)
    if probs.shape != ref.shape:
        raise MlkitError(f"{path} gives probabilities of shape {probs.shape}, Keras {ref.shape}")
    diff = np.abs(probs - ref)
    agreement = float((probs.argmax(1) == ref.argmax(1)).mean()) if len(ref) else 1.0
    accuracy = _accuracy(probs, images.labels, card)
    problems = []
    if tol.max_abs is not None and diff.max(initial=0.0) > tol.max_abs:
        problems.append(f"max|Δp| {diff.max():.4g} > {tol.max_abs:g}")
    if agreement < tol.min_agreement:
        problems.append(f"top-1 agreement {agreement:.1%} < {tol.min_agreement:.1%}")
    if tol.max_accuracy_drop is not None and accuracy is not None and reference.accuracy is not None:
        drop = reference.accuracy - accuracy
        if drop > tol.max_accuracy_drop + 1e-12:
            problems.append(f"accuracy drop {drop * 100:.1f} pt > {tol.max_accuracy_drop * 100:g} pt")
    if not np.isfinite(probs).all():
        problems.append("non-finite probabilities")
    return ValidationRow(
        file=str(path), kind=kind, precision=precision, runtime=getattr(runner, "runtime", "LiteRT"),
        samples=len(ref), max_abs_diff=float(diff.max(initial=0.0)), mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        agreement=agreement, accuracy=accuracy, keras_accuracy=reference.accuracy, size_bytes=path_size(path),
        latency_ms=latency_ms(runner, images.pixels), tolerance=tol.describe(), valid=not problems,
        problems=problems)


def validate(model_file: Path | str, *, against: Path | str | None = None, data_dir: Path | str | None = None,
             samples: int | None = None, precision: str | None = None, write: bool = True) -> ValidationReport:
    """``mlkit validate``: check one exported file against its Keras model (by default the
    ``model.keras`` in the same folder, as ``model.json`` names it)."""
    path = Path(model_file)
    if not path.exists():
        raise MlkitError(f"{path} does not exist: give an exported model file (.mlmodel, .mlpackage, .tflite)")
    if path.suffix.lower() not in EXPORT_SUFFIXES:
        open_export(path, None)   # raises the right message for .keras and unknown suffixes
    if against is not None:
        keras_path = Path(against)
        if not keras_path.is_file() or keras_path.suffix.lower() != ".keras":
            raise MlkitError(f"--against {keras_path}: give the model.keras the file was exported from")
        card = read_model_card(keras_path)   # its model.json; the export may live elsewhere (e.g. in Xcode)
    else:
        card = read_model_card(path)
        keras_path = path.parent / card.files.get("keras", KERAS_FILE)
        if not keras_path.is_file():
            raise MlkitError(f"no Keras model to compare with at {keras_path}: give --against models/<name>/model.keras")
    if precision is not None:
        tolerance_for(precision)
    images = validation_images(card, data_dir, samples)
    reference = run_reference(keras_path, card, images)
    report = ValidationReport(reference, images, [compare(path, card, images, reference, precision)])
    if write:
        write_validation_json(keras_path.parent, report)
    return report


def write_validation_json(folder: Path, report: ValidationReport) -> Path:
    """Merge ``report`` into ``folder/validation.json``: one row per exported file, the
    newest winning. Paths are stored relative to ``folder`` (absolute for a file outside it),
    so the record survives moving the folder. Rows of files inside ``folder`` that still
    exist are kept; rows of files elsewhere (``--output``) only from this report, so
    exporting to other folders does not pile up rows of files that may be long gone."""
    folder = Path(folder)
    out = folder / VALIDATION_JSON
    doc = report.to_json()
    doc["keras"]["file"] = _stored_path(Path(doc["keras"]["file"]), folder)
    for row in doc["files"]:
        row["file"] = _stored_path(Path(row["file"]), folder)
    try:
        old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    except (OSError, ValueError):
        old = {}
    mine = {r["file"] for r in doc["files"]}
    kept = []
    for r in old.get("files", []) if isinstance(old, dict) else []:
        where = _row_path(str(r.get("file", "")), folder)
        if where is None or not _inside(where, folder) or not where.exists():
            continue                     # another folder's file, or one that is gone
        r["file"] = _stored_path(where, folder)
        if r["file"] not in mine:
            kept.append(r)
    doc["files"] = kept + doc["files"]
    doc["valid"] = all(r.get("valid") for r in doc["files"])
    atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    return out


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _stored_path(path: Path, folder: Path) -> str:
    """``path`` as validation.json stores it: relative to ``folder``, else absolute."""
    full = path.resolve()
    return full.relative_to(folder.resolve()).as_posix() if _inside(full, folder) else str(full)


def _row_path(text: str, folder: Path) -> Path | None:
    """The file a stored row names: relative to ``folder``; an older validation.json may hold
    absolute paths or paths relative to where export ran."""
    if not text:
        return None
    p = Path(text)
    if p.is_absolute():
        return p
    return folder / p if (folder / p).exists() or not p.exists() else p.resolve()
