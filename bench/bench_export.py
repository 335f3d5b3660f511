"""Benchmark: every export format and precision of a real model, validated against Keras.

    .venv/bin/python bench/bench_export.py [--model DIR] [--samples N] [--json]

Model: MobileNetV2 1.0 at 224 px with the real ImageNet weights of ``../shared/data/keras``,
trained by ``toolkit.training.train`` on the seeded split of ``../shared/data/seefood/train`` that
``bench_train.py`` uses (or ``--model``: a folder written by ``mlkit train`` whose dataset
is on this machine). Skipped (exit status 0, with a message) where the shared data is absent.

For each file — Core ML NeuralNetwork (.mlmodel) and ML program (.mlpackage) at fp32, fp16
and int8; TFLite none, fp16, dynamic and int8 — it measures the export's wall time and
size, then validates it exactly as ``mlkit export`` does, on the held-out test photos: max
and mean |Δp| against Keras, top-1 agreement, accuracy of each, latency per image (Core ML
in the reference evaluator here, TFLite in LiteRT). The figures are printed side by side with
the issue's tolerances, the bar each file must clear; the exit status is 1 when one misses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_train import KERAS_HOME, PHOTOS, make_dataset_folder  # noqa: E402

# (label, kind, format or quantize, precision)
FILES = [
    ("Core ML .mlmodel fp32", "coreml", "neuralnetwork", "fp32"),
    ("Core ML .mlmodel fp16", "coreml", "neuralnetwork", "fp16"),
    ("Core ML .mlmodel int8", "coreml", "neuralnetwork", "int8"),
    ("Core ML .mlpackage fp32", "coreml", "mlprogram", "fp32"),
    ("Core ML .mlpackage fp16", "coreml", "mlprogram", "fp16"),
    ("Core ML .mlpackage int8", "coreml", "mlprogram", "int8"),
    ("TFLite fp32", "tflite", "none", "fp32"),
    ("TFLite fp16", "tflite", "fp16", "fp16"),
    ("TFLite dynamic", "tflite", "dynamic", "int8"),
    ("TFLite int8", "tflite", "int8", "int8"),
]
INT8_TFLITE_MAX_BYTES = 3_000_000


def train_model(work: Path, seed: int) -> Path:
    from toolkit.training.train import TrainConfig, train

    folder = make_dataset_folder(work, seed)
    t0 = time.perf_counter()
    result = train(TrainConfig(dataset_dir=folder, output_dir=work / "models", alpha=1.0, image_size=224,
                               weights="imagenet", epochs=10, seed=seed))
    print(f"trained {result.path} in {time.perf_counter() - t0:.0f} s "
          f"(test accuracy {result.evaluation.accuracy:.1%})", file=sys.stderr)
    return result.path


def run(model_dir: Path, samples: int | None, out_dir: Path) -> dict:
    from toolkit.export import validate as val
    from toolkit.export import calibration_images
    from toolkit.export.coreml import export_coreml, find_keras_model
    from toolkit.export.tflite import export_tflite

    keras_path, card = find_keras_model(model_dir)
    images = val.validation_images(card, None, samples)
    reference = val.run_reference(keras_path, card, images)
    print(f"Keras: accuracy {reference.accuracy:.1%} on {images.source}, {reference.latency_ms:.1f} ms/image",
          file=sys.stderr)
    calibration = calibration_images(card)
    rows = []
    for label, kind, how, precision in FILES:
        t0 = time.perf_counter()
        if kind == "coreml":
            suffix = ".mlmodel" if how == "neuralnetwork" else ".mlpackage"
            path = out_dir / f"{how}-{precision}" / f"HotDogClassifier{suffix}"
            export_coreml(keras_path, path, name="HotDogClassifier", fmt=how, precision=precision)
        else:
            path = out_dir / f"hot_dog_{how}.tflite"
            export_tflite(keras_path, card, path, quantize=how, calibration=calibration if how == "int8" else None)
        export_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        row = val.compare(path, card, images, reference, precision)
        validate_s = time.perf_counter() - t1
        rows.append({"file": label, "export_seconds": round(export_s, 1), "validate_seconds": round(validate_s, 1),
                     **{k: v for k, v in row.to_json().items() if k not in ("file", "kind")}})
        print(f"{label}: {export_s:.0f} s, {row.size_bytes / 1e6:.2f} MB, max|Δp| {row.max_abs_diff:.2g}, "
              f"agreement {row.agreement:.1%}, {row.status}", file=sys.stderr)
    return {"model": str(model_dir), "images": images.source, "keras_accuracy": reference.accuracy,
            "keras_latency_ms": round(reference.latency_ms, 2), "keras_size_bytes": reference.size_bytes,
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load "
                       f"{os.getloadavg()[0]:.1f}", "rows": rows}


def print_table(result: dict) -> None:
    print(f"\nModel {result['model']}; validation on {result['images']}; machine {result['machine']}")
    print(f"Keras: accuracy {result['keras_accuracy']:.1%}, {result['keras_latency_ms']:.1f} ms/image, "
          f"{result['keras_size_bytes'] / 1e6:.2f} MB\n")
    head = ("file", "export s", "MB", "max|Δp|", "mean|Δp|", "agree", "acc", "ms/img", "runtime", "target", "status")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * 7 + ["---"] * 3) + "|")
    for r in result["rows"]:
        runtime = "reference evaluator" if r["runtime"].startswith("reference") else r["runtime"]
        acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
        print(f"| {r['file']} | {r['export_seconds']:.0f} | {r['size_bytes'] / 1e6:.2f} | {r['max_abs_diff']:.2g} | "
              f"{r['mean_abs_diff']:.2g} | {r['agreement']:.1%} | {acc} | {r['latency_ms']:.1f} | {runtime} | "
              f"{r['tolerance']} | {r['status']} |")
    tfl8 = next(r for r in result["rows"] if r["file"] == "TFLite int8")
    ok = tfl8["size_bytes"] <= INT8_TFLITE_MAX_BYTES
    print(f"\nint8 TFLite size {tfl8['size_bytes'] / 1e6:.2f} MB (target <= {INT8_TFLITE_MAX_BYTES / 1e6:.0f} MB): "
          f"{'met' if ok else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a model folder from `mlkit train` (default: train one)")
    ap.add_argument("--samples", type=int, default=None, help="validation images (default: the whole test split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    if args.model is None and not (PHOTOS.is_dir() and KERAS_HOME.is_dir()):
        print(f"skipped: needs {PHOTOS} and {KERAS_HOME} (../shared/data beside the project)")
        return 0
    os.environ.setdefault("KERAS_HOME", str(KERAS_HOME))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import logging

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mlkit-bench-export-") as tmp:
        work = Path(tmp)
        model_dir = args.model or train_model(work, args.seed)
        result = run(model_dir, args.samples, work / "exports")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "export.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    tfl8 = next(r for r in result["rows"] if r["file"] == "TFLite int8")
    ok = all(r["valid"] for r in result["rows"]) and tfl8["size_bytes"] <= INT8_TFLITE_MAX_BYTES
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
