"""Benchmark: the seed tutorial's recipe, ``--quality fast`` and ``--quality best`` (and each
after ``mlkit review``'s exclusions), side by side under repeated stratified k-fold
cross-validation on the shared photos.

    .venv/bin/python bench/bench_quality.py [--repeats 3] [--folds 5] \\
        [--modes recipe,fast,fast-excl,best,best-excl] [--first-repeat 0] [--seed 0] \\
        [--log bench/out/quality.jsonl]
    .venv/bin/python bench/bench_quality.py --report bench/out/quality.jsonl [more.jsonl ...]

Data: ``../shared/data/seefood/train`` (249 hot dog + 249 not hot dog photos; skipped,
exit status 0, where absent); ImageNet MobileNetV2 1.0 weights from ``../shared/data/keras``.

Protocol. For each repeat r, ``StratifiedKFold(folds, shuffle=True, random_state=seed + r)``
over all 498 photos. In each fold the held-out part is the test split; the training part
is split once more, stratified and seeded (10 % val for early stopping, the rest train),
and written as an mlkit dataset folder (symlinks). Every mode sees the same folders.
Nothing is tuned here: every setting is the toolkit's default, fixed before this benchmark
ran, and the exclusions come from a review of the fold's training part only.

Modes:
- recipe: the seed tutorial (frozen MobileNetV2, GAP, dropout 0.2, Dense softmax, Adam
  1e-3, 10 epochs, no early stopping) trained on cached features of the fold's train part
  (the frozen backbone gives the same features every epoch, so this is the recipe's model
  at a fraction of its cost; images resized as mlkit does, antialiased squash).
- fast: ``toolkit.training.train.train`` with its defaults (the whole call, fresh features per fold).
- fast-excl: the fold's train+val images reviewed as ``mlkit review`` does (out-of-fold
  logistic regression on frozen features, cleanlab's find_label_issues), the flagged ones
  excluded (``--exclude``), then fast.
- fast-nested: a hyperparameter search inside each training part only (nested CV): for each
  (image size, L2) of ``NESTED_GRID`` the fast path's head (``build_head``, Adam 1e-3, up to 30
  epochs, early stopping with patience 3) is fitted on cached frozen features in stratified
  3-fold CV over the fold's train+val images; the setting with the best mean inner accuracy
  (ties: the earlier in the grid) is then trained by ``train`` itself (``--image-size``,
  ``--l2``) and scored on the held-out test part, which the search never sees.
- best / best-excl: the same with ``quality="best"``.

Each (mode, repeat, fold) result is appended as one JSON line to ``--log`` as soon as it
is known, so a partial run still reports; ``--report`` prints the table of such files:
accuracy mean ± sd over folds, pooled per-class recall, the difference to the recipe on
the same folds, and the training time (wall seconds of the train call; for the recipe the
head's fit on cached features plus the feature pass's share).
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

import numpy as np

from seefood_photos import CLASSES, KERAS_HOME, PHOTOS, ROOT, class_photos

MODES = ("recipe", "fast", "fast-excl", "fast-nested", "best", "best-excl")
# fast-nested: the (image size, L2) of the fast path chosen inside each training part
NESTED_GRID = tuple((size, l2) for size in (224, 320) for l2 in (0.01, 0.1, 1.0))
INNER_FOLDS = 3
HEAD_EPOCHS, HEAD_PATIENCE = 30, 3   # the fast path's defaults (TrainConfig)
VAL_FRACTION = 0.1
RECIPE_EPOCHS = 10


def photos() -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for i, c in enumerate(CLASSES):
        files = class_photos(c)
        paths += files
        labels += [i] * len(files)
    return paths, np.asarray(labels, np.int64)


def folds_of(labels: np.ndarray, folds: int, seed: int, repeat: int):
    """[(train_idx, val_idx, test_idx)] of one repeat."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    out = []
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat)
    for k, (fit_idx, test_idx) in enumerate(outer.split(np.zeros(len(labels)), labels)):
        tr, va = train_test_split(fit_idx, test_size=VAL_FRACTION, stratify=labels[fit_idx],
                                  random_state=seed + 1000 * (repeat + 1) + k)
        out.append((np.sort(tr), np.sort(va), np.sort(test_idx)))
    return out


def dataset_folder(root: Path, paths: list[Path], labels: np.ndarray, parts: dict[str, np.ndarray]) -> Path:
    folder = root / "seefood"
    counts = {c: {s: 0 for s in parts} for c in CLASSES}
    for split, idx in parts.items():
        for i in idx:
            cls = CLASSES[labels[i]]
            (folder / split / cls).mkdir(parents=True, exist_ok=True)
            (folder / split / cls / paths[i].name).symlink_to(paths[i])
            counts[cls][split] += 1
    listing = "\n".join(f"{s}/{paths[i].name}" for s, idx in parts.items() for i in idx)
    import hashlib

    doc = {"format": 1, "name": "seefood", "classes": list(CLASSES), "counts": counts,
           "class_weights": {c: 1.0 for c in CLASSES}, "balance": {"mode": "none", "repeat": {c: 1 for c in CLASSES}},
           "content_hash": hashlib.sha256(listing.encode()).hexdigest(), "positive": {"folder": CLASSES[0]}}
    (folder / "dataset.json").write_text(json.dumps(doc))
    return folder


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return {"accuracy": float((y_true == y_pred).mean()), "n": int(len(y_true)),
            "correct_per_class": [int(((y_true == k) & (y_pred == k)).sum()) for k in range(len(CLASSES))],
            "n_per_class": [int((y_true == k).sum()) for k in range(len(CLASSES))]}


# ------------------------------------------------------------------------------ modes

def run_recipe(feats: np.ndarray, labels: np.ndarray, tr, va, te, seed: int, feature_seconds_per_image: float) -> dict:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(feats.shape[1],))
    x = keras.layers.Dropout(0.2)(inputs)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(feats[tr], labels[tr], validation_data=(feats[va], labels[va]), epochs=RECIPE_EPOCHS, batch_size=32,
              shuffle=True, verbose=0)
    fit_s = time.perf_counter() - t0
    pred = model.predict(feats[te], verbose=0).argmax(axis=1)
    return {**scores(labels[te], pred), "train_seconds": fit_s + feature_seconds_per_image * (len(tr) + len(va)),
            "excluded": 0}


def review_exclusions(feats: np.ndarray, labels: np.ndarray, tr, va, paths: list[Path], seed: int) -> list[str]:
    """What ``mlkit review`` flags among the fold's train+val images (file names)."""
    from toolkit.training.review import out_of_fold_probabilities, rank_label_issues

    idx = np.concatenate([tr, va])
    probs = out_of_fold_probabilities(feats[idx], labels[idx], folds=5, seed=seed)
    return [paths[idx[i]].name for i in rank_label_issues(labels[idx], probs)]


def head_accuracy(f_fit: np.ndarray, y_fit: np.ndarray, f_eval: np.ndarray, y_eval: np.ndarray, l2: float,
                  seed: int) -> float:
    """Accuracy on (f_eval, y_eval) of the fast path's head fitted on (f_fit, y_fit)."""
    import keras

    from toolkit.training.model import build_head
    from toolkit.training.spec import ModelSpec

    keras.utils.set_random_seed(seed)
    head = build_head(ModelSpec(labels=list(CLASSES)), f_fit.shape[1], l2)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(patience=HEAD_PATIENCE, restore_best_weights=True)
    head.fit(f_fit, y_fit, validation_data=(f_eval, y_eval), epochs=HEAD_EPOCHS, batch_size=32, verbose=0,
             callbacks=[stop])
    return float((head.predict(f_eval, verbose=0).argmax(axis=1) == y_eval).mean())


def nested_choice(feats: dict[int, np.ndarray], labels: np.ndarray, fit_idx: np.ndarray, seed: int,
                  repeat: int, fold: int) -> tuple[tuple[int, float], dict[str, float]]:
    """The grid setting with the best mean inner-CV accuracy on ``fit_idx`` (the outer
    fold's train+val images) alone, and every setting's inner accuracy."""
    from sklearn.model_selection import StratifiedKFold

    inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed + 7919 * (repeat + 1) + fold)
    splits = list(inner.split(fit_idx, labels[fit_idx]))
    scores = {}
    for size, l2 in NESTED_GRID:
        f = feats[size]
        scores[f"{size}/{l2:g}"] = float(np.mean([
            head_accuracy(f[fit_idx[a]], labels[fit_idx[a]], f[fit_idx[b]], labels[fit_idx[b]], l2, seed)
            for a, b in splits]))
    best = max(NESTED_GRID, key=lambda k: (scores[f"{k[0]}/{k[1]:g}"], -NESTED_GRID.index(k)))
    return best, scores


def run_nested(folder: Path, feats: dict[int, np.ndarray], labels: np.ndarray, tr, va, seed: int, repeat: int,
               fold: int, tmp: Path) -> dict:
    """fast-nested: search inside the fold's train+val images, then train the choice."""
    t0 = time.perf_counter()
    (size, l2), inner = nested_choice(feats, labels, np.concatenate([tr, va]), seed, repeat, fold)
    search_s = time.perf_counter() - t0
    row = run_mlkit(folder, "fast", seed, tmp / "out" / "fast-nested", None, image_size=size, l2=l2)
    row.update({"chosen": f"{size}/{l2:g}", "inner": inner, "search_seconds": search_s,
                "train_seconds": row["train_seconds"] + search_s})
    return row


def run_mlkit(folder: Path, quality: str, seed: int, out: Path, exclude: list[str] | None, **settings) -> dict:
    from toolkit.training.data import read_dataset, split_files
    from toolkit.training.train import TrainConfig, train

    exclude_file = None
    if exclude:
        exclude_file = out / "exclude.txt"
        exclude_file.parent.mkdir(parents=True, exist_ok=True)
        exclude_file.write_text("\n".join(exclude) + "\n")
    t0 = time.perf_counter()
    result = train(TrainConfig(folder, output_dir=out, quality=quality, seed=seed,
                               exclude=exclude_file, **settings))
    wall = time.perf_counter() - t0
    ev = result.evaluation
    test = split_files(read_dataset(folder), "test")
    assert ev.n == len(test)
    phases = {k: v for k, v in result.timings.items() if k.endswith("_epochs")}
    return {**scores(np.asarray(ev.y_true), np.asarray(ev.y_pred)), "train_seconds": wall,
            "excluded": len(exclude or []), "epochs": phases}


# ------------------------------------------------------------------------------ main

def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu or platform.processor(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--first-repeat", type=int, default=0, help="start at this repeat (to split a run)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold-list", default="", help="only these fold numbers, e.g. 0,1 (default: all)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log", type=Path, default=ROOT / "bench" / "out" / "quality.jsonl")
    ap.add_argument("--report", type=Path, nargs="*", help="print the table of these JSONL logs and exit")
    args = ap.parse_args(argv)
    if args.report:
        return report(args.report)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        ap.error(f"unknown mode(s) {unknown}; choose from {MODES}")
    if not PHOTOS.is_dir() or not KERAS_HOME.is_dir():
        print(f"skipped: needs {PHOTOS} and {KERAS_HOME}")
        return 0
    os.environ["KERAS_HOME"] = str(KERAS_HOME)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from toolkit.training.spec import ModelSpec
    from toolkit.training.review import image_features

    paths, labels = photos()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    import subprocess

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    header = {"kind": "run", "run": run_id, "argv": sys.argv[1:], "machine": machine(), "commit": commit,
              "load_start": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    _append(args.log, header)
    feats = None
    per_image = 0.0
    if {"recipe", "fast-excl", "fast-nested", "best-excl"} & set(modes):
        t0 = time.perf_counter()
        feats = image_features(paths, ModelSpec(labels=list(CLASSES)))
        per_image = (time.perf_counter() - t0) / len(paths)
        print(f"features of {len(paths)} photos in {per_image * len(paths):.1f} s", flush=True)
    by_size = {224: feats}
    if "fast-nested" in modes:   # the frozen backbone's features depend on the pixels only, not on any label
        for size in sorted({s for s, _ in NESTED_GRID} - {224}):
            by_size[size] = image_features(paths, ModelSpec(labels=list(CLASSES), image_size=size))
    only = {int(x) for x in args.fold_list.split(",") if x.strip()}
    for repeat in range(args.first_repeat, args.first_repeat + args.repeats):
        for fold, (tr, va, te) in enumerate(folds_of(labels, args.folds, args.seed, repeat)):
            if only and fold not in only:
                continue
            with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
                folder = dataset_folder(Path(tmp), paths, labels, {"train": tr, "val": va, "test": te})
                exclusions = None
                for mode in modes:
                    t0 = time.perf_counter()
                    if mode == "recipe":
                        row = run_recipe(feats, labels, tr, va, te, args.seed, per_image)
                    elif mode == "fast-nested":
                        row = run_nested(folder, by_size, labels, tr, va, args.seed, repeat, fold, Path(tmp))
                    else:
                        if mode.endswith("-excl") and exclusions is None:
                            exclusions = review_exclusions(feats, labels, tr, va, paths, args.seed)
                        row = run_mlkit(folder, mode.split("-")[0], args.seed, Path(tmp) / "out" / mode,
                                        exclusions if mode.endswith("-excl") else None)
                    row.update({"kind": "result", "run": run_id, "mode": mode, "repeat": repeat, "fold": fold,
                                "folds": args.folds, "wall_seconds": time.perf_counter() - t0,
                                "load": os.getloadavg()})
                    _append(args.log, row)
                    print(f"repeat {repeat} fold {fold} {mode:<9} acc {row['accuracy']:.3f} "
                          f"({row['train_seconds']:.1f} s, excluded {row['excluded']}, load "
                          f"{row['load'][0]:.2f})" + (f", chose {row['chosen']}" if "chosen" in row else ""),
                          flush=True)
    _append(args.log, {"kind": "end", "run": run_id, "load_end": os.getloadavg(),
                       "ended": time.strftime("%Y-%m-%d %H:%M:%S")})
    return report([args.log])


def _append(path: Path, doc: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(doc) + "\n")


def report(logs: list[Path]) -> int:
    rows = [json.loads(line) for p in logs for line in p.read_text().splitlines() if line.strip()]
    results = [r for r in rows if r.get("kind") == "result"]
    key = {(r["mode"], r["repeat"], r["fold"]): r for r in results}   # a later run of the same fold wins
    recipe = {(rep, f): r["accuracy"] for (m, rep, f), r in key.items() if m == "recipe"}
    print(f"{'mode':<11} {'folds':>5} {'accuracy':>15} {'vs recipe (same folds)':>23} "
          f"{'recall hot_dog':>15} {'recall not':>11} {'excluded':>9} {'train s':>15}")
    for mode in MODES:
        rs = [r for (m, _, _), r in sorted(key.items()) if m == mode]
        if not rs:
            continue
        acc = np.array([r["accuracy"] for r in rs])
        paired = np.array([r["accuracy"] - recipe[(r["repeat"], r["fold"])] for r in rs
                           if (r["repeat"], r["fold"]) in recipe])
        correct = np.sum([r["correct_per_class"] for r in rs], axis=0)
        total = np.sum([r["n_per_class"] for r in rs], axis=0)
        secs = np.array([r["train_seconds"] for r in rs])
        diff = f"{100 * paired.mean():+.1f} ± {100 * paired.std(ddof=1):.1f} pt" if len(paired) > 1 else "-"
        sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
        print(f"{mode:<11} {len(rs):>5} {100 * acc.mean():>7.1f} ± {100 * sd:4.1f} % {diff:>23} "
              f"{100 * correct[0] / total[0]:>14.1f}% {100 * correct[1] / total[1]:>10.1f}% "
              f"{np.mean([r['excluded'] for r in rs]):>9.1f} {secs.mean():>8.1f} ± {secs.std():4.1f}")
    chosen = [r["chosen"] for (m, _, _), r in sorted(key.items()) if m == "fast-nested"]
    if chosen:
        counts = {c: chosen.count(c) for c in sorted(set(chosen))}
        print("fast-nested chose (image size/L2: folds): " + ", ".join(f"{c}: {n}" for c, n in counts.items()))
    for r in rows:
        if r.get("kind") in ("run", "end"):
            print({k: v for k, v in r.items() if k != "kind"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
