"""Benchmark: ``mlkit train`` against the seed tutorial's recipe, on real photos.

    .venv/bin/python bench/bench_train.py [--epochs N] [--image-size 224] [--hires 320] [--seed 0] [--json]

Data: ``../shared/data/seefood/train`` (hot_dog / not_hot_dog food photos; skipped, exit
status 0, with a message where absent), split per class with a fixed seed into test
(20%), val (10%) and train (the rest). Weights: the real ImageNet MobileNetV2 1.0 weights
of ``../shared/data/keras`` (KERAS_HOME), offline.

Two runs, one after the other, each in a fresh Python process (same start-up costs):

1. tutorial: the recipe of the seed tutorials, written as they write it: images from
   ``keras.utils.image_dataset_from_directory`` (resized to the input size), the model
   Input -> ``mobilenet_v2.preprocess_input`` -> frozen MobileNetV2 (``training=False``) ->
   GlobalAveragePooling2D -> Dropout(0.2) -> Dense(softmax); Adam(1e-3); ``fit`` for
   ``--epochs`` epochs (default 10, the tutorials' number), every image through the frozen
   backbone every epoch; no caching.
2. mlkit: ``toolkit.training.train.train`` with its defaults (fast path: backbone features computed
   once, the head trained on them; early stopping on the validation loss; images squashed
   to the input size; an L2 penalty on the classifier's kernel; 30 head epochs unless
   ``--epochs`` is given), the same split, seed and input size; wall time of the whole
   call (model build, features, head, test evaluation, writing model, JSON files and plots).
3. mlkit at ``--hires`` px (default 320; 0 skips it): the same with a larger input, which
   these weights (trained at 224 px) turn into better features for whole, squashed photos.

All are scored on the same held-out test images. Targets (exit status 1 when missed):
test accuracy >= 95% (of the best mlkit run); mlkit's training at 224 px (the whole call)
<= 120 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from seefood_photos import CLASSES, KERAS_HOME, PHOTOS, ROOT, class_photos

ACCURACY_TARGET = 0.95
TIME_TARGET_S = 120.0


def split_photos(seed: int, test: float = 0.2, val: float = 0.1) -> dict[str, dict[str, list[Path]]]:
    """split -> class -> files; per class, a seeded shuffle, then test, val, train."""
    out: dict[str, dict[str, list[Path]]] = {s: {} for s in ("train", "val", "test")}
    for i, cls in enumerate(CLASSES):
        files = class_photos(cls)
        order = np.random.default_rng([seed, i]).permutation(len(files))
        files = [files[k] for k in order]
        n_test, n_val = round(len(files) * test), round(len(files) * val)
        out["test"][cls] = sorted(files[:n_test])
        out["val"][cls] = sorted(files[n_test:n_test + n_val])
        out["train"][cls] = sorted(files[n_test + n_val:])
    return out


def make_dataset_folder(root: Path, seed: int) -> Path:
    """The split as an mlkit dataset folder (symlinks + dataset.json)."""
    split = split_photos(seed)
    folder = root / "seefood"
    for s, by_class in split.items():
        for cls, files in by_class.items():
            (folder / s / cls).mkdir(parents=True, exist_ok=True)
            for f in files:
                (folder / s / cls / f.name).symlink_to(f)
    listing = "\n".join(f"{s}/{c}/{f.name}" for s in split for c in CLASSES for f in split[s][c])
    counts = {c: {s: len(split[s][c]) for s in split} for c in CLASSES}
    doc = {"format": 1, "name": "seefood", "classes": list(CLASSES), "counts": counts,
           "class_weights": {c: 1.0 for c in CLASSES}, "balance": {"mode": "none", "repeat": {c: 1 for c in CLASSES}},
           "content_hash": hashlib.sha256(listing.encode()).hexdigest(),
           "positive": {"folder": CLASSES[0], "name": "Hot dog"}}
    (folder / "dataset.json").write_text(json.dumps(doc, indent=2))
    return folder


# ------------------------------------------------------------------------------ the two runs

TUTORIAL_EPOCHS = 10


def run_tutorial(folder: Path, epochs: int | None, size: int, seed: int) -> dict:
    import keras
    import tensorflow as tf

    epochs = epochs or TUTORIAL_EPOCHS
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()

    def load(split: str, shuffle: bool):
        return keras.utils.image_dataset_from_directory(
            folder / split, labels="inferred", label_mode="int", class_names=list(CLASSES), image_size=(size, size),
            batch_size=32, shuffle=shuffle, seed=seed, verbose=False)

    train_ds, val_ds, test_ds = load("train", True), load("val", False), load("test", False)
    train_ds, val_ds = train_ds.prefetch(tf.data.AUTOTUNE), val_ds.prefetch(tf.data.AUTOTUNE)
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input(shape=(size, size, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(inputs)
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    t_fit = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
    fit_s = time.perf_counter() - t_fit
    train_s = time.perf_counter() - t0
    y_true = np.concatenate([y.numpy() for _, y in test_ds])
    y_pred = model.predict(test_ds, verbose=0).argmax(axis=1)
    n_train = sum(len(list((folder / "train" / c).iterdir())) for c in CLASSES)
    return {"train_seconds": train_s, "fit_seconds": fit_s, "epochs_run": len(history.history["loss"]),
            "train_images": n_train, "feature_images_per_second": None,
            "training_images_per_second": n_train * epochs / fit_s, **_scores(y_true, y_pred)}


def run_mlkit(folder: Path, epochs: int | None, size: int, seed: int, out: Path) -> dict:
    """``train`` as ``mlkit train`` runs it, MobileNetV2 1.0 at ``size`` px."""
    from toolkit.training.train import TrainConfig, train

    t0 = time.perf_counter()
    result = train(TrainConfig(dataset_dir=folder, output_dir=out, alpha=1.0, image_size=size, weights="imagenet",
                               epochs=epochs, seed=seed))
    train_s = time.perf_counter() - t0
    ev = result.evaluation
    t = result.timings
    n_train = sum(len(list((folder / "train" / c).iterdir())) for c in CLASSES)
    return {"train_seconds": train_s, "fit_seconds": t["head_seconds"], "epochs_run": t["head_epochs"],
            "train_images": n_train, "feature_seconds": t["features_seconds"],
            "feature_images_per_second": t["features_images_per_second"],
            "training_images_per_second": t["head_images_per_second"], **_scores(ev.y_true, ev.y_pred)}


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from toolkit.training import metrics

    cm = metrics.confusion_matrix(y_true, y_pred, len(CLASSES))
    per = metrics.per_class_scores(cm, CLASSES)
    return {"test_images": int(cm.sum()), "accuracy": metrics.accuracy(cm),
            "recall": {c.label: c.recall for c in per}, "precision": {c.label: c.precision for c in per},
            "confusion_matrix": cm.tolist()}


def worker(kind: str, folder: Path, epochs: int | None, size: int, seed: int, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    res = run_tutorial(folder, epochs, size, seed) if kind == "tutorial" else run_mlkit(folder, epochs, size, seed, out)
    print(json.dumps({"image_size": size, **res}))


def in_child(kind: str, size: int, folder: Path, args, out: Path) -> dict:
    env = dict(os.environ, KERAS_HOME=str(KERAS_HOME), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, __file__, "--worker", kind, "--folder", str(folder), "--out", str(out),
           "--image-size", str(size), "--seed", str(args.seed)]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"the {kind} run failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"head epochs for every run (default: the tutorial {TUTORIAL_EPOCHS}, mlkit its own default)")
    ap.add_argument("--image-size", type=int, default=224, help="input size in pixels (default 224)")
    ap.add_argument("--hires", type=int, default=320, help="also run mlkit at this input size (default 320; 0: no)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default 0)")
    ap.add_argument("--only", choices=["tutorial", "mlkit"], help="run the tutorial's recipe or mlkit only")
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    ap.add_argument("--worker", choices=["tutorial", "mlkit"], help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.folder, args.epochs, args.image_size, args.seed, args.out)
        return 0
    missing = [p for p in (PHOTOS / CLASSES[0], PHOTOS / CLASSES[1],
                           KERAS_HOME / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
               if not p.exists()]
    if missing:
        print(f"skipped: needs {', '.join(map(str, missing))} (../shared/data beside the project)")
        return 0

    with tempfile.TemporaryDirectory(prefix="mlkit-bench-train-") as tmp:
        folder = make_dataset_folder(Path(tmp), args.seed)
        load_before = os.getloadavg()[0]
        plan = [("tutorial", "tutorial", args.image_size), ("mlkit", "mlkit", args.image_size)]
        if args.hires:
            plan.append((f"mlkit {args.hires}px", "mlkit", args.hires))
        runs = {}
        for name, kind, size in plan:
            if args.only in (None, kind):
                runs[name] = in_child(kind, size, folder, args, Path(tmp) / f"models-{size}")
        counts = json.loads((folder / "dataset.json").read_text())["counts"]
    checks = {}
    mlkit_runs = [r for n, r in runs.items() if n.startswith("mlkit")]
    if mlkit_runs:
        best = max(r["accuracy"] for r in mlkit_runs)
        checks[f"mlkit held-out accuracy >= {ACCURACY_TARGET:.0%} (best run: {best:.1%})"] = best >= ACCURACY_TARGET
    if "mlkit" in runs:
        checks[f"mlkit frozen-base training at {args.image_size} px <= {TIME_TARGET_S:.0f} s"] = \
            runs["mlkit"]["train_seconds"] <= TIME_TARGET_S
    result = {"photos": str(PHOTOS), "split": {s: sum(counts[c][s] for c in CLASSES) for s in ("train", "val", "test")},
              "epochs": args.epochs, "image_size": args.image_size, "seed": args.seed, "cpus": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": os.getloadavg()[0], "runs": runs,
              "checks": checks, "passed": all(checks.values())}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0 if result["passed"] else 1


def _print_table(result: dict) -> None:
    runs = result["runs"]
    split = result["split"]
    print(f"seefood photos: {split['train']} train, {split['val']} val, {split['test']} test (seed {result['seed']}); "
          f"MobileNetV2 1.0, ImageNet weights, head epochs: "
          + (f"up to {result['epochs']}" if result["epochs"] else f"tutorial {TUTORIAL_EPOCHS}, mlkit its default"))
    print(f"{result['cpus']} CPUs; load average {result['load_average_before']:.2f} before, "
          f"{result['load_average_after']:.2f} after (other work on the machine takes CPU from these runs)")

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    rows = [("input size, px", "image_size", "d"), ("test accuracy", "accuracy", ".1%"),
            ("recall hot_dog", ("recall", "hot_dog"), ".1%"),
            ("recall not_hot_dog", ("recall", "not_hot_dog"), ".1%"), ("epochs run", "epochs_run", "d"),
            ("training wall time, s", "train_seconds", ".1f"), ("  of which fit, s", "fit_seconds", ".1f"),
            ("  of which features, s", "feature_seconds", ".1f"),
            ("features, images/s", "feature_images_per_second", ".1f"),
            ("training, images/s", "training_images_per_second", ".1f")]
    names = list(runs)
    print(f"{'':<26}" + "".join(f"{n:>14}" for n in names))
    for label, key, spec in rows:
        cells = []
        for n in names:
            v = runs[n].get(key[0], {}).get(key[1]) if isinstance(key, tuple) else runs[n].get(key)
            cells.append(fmt(v, spec))
        print(f"{label:<26}" + "".join(f"{c:>14}" for c in cells))
    if "tutorial" in runs and "mlkit" in runs:
        print("speed-up of the whole training call at the same input size: "
              f"{runs['tutorial']['train_seconds'] / runs['mlkit']['train_seconds']:.1f}x")
    for name, passed in result["checks"].items():
        print(f"  [{'PASS' if passed else 'FAIL'}] {name}")


if __name__ == "__main__":
    sys.exit(main())
