"""Selection on a labels file of the real size: mlkit's columnar index vs pandas.read_csv.

The query is what `mlkit build-dataset --positive "Hot dog" --negatives 120` asks of the
v7 train labels: images with a verified Hot dog label (Confidence 1), and 120 negatives
drawn from all other images, excluding anything verified to show Hot dog or a related
class. Each variant runs in its own process, so its peak memory (max RSS) is its own:

- baseline: ``pandas.read_csv`` of the whole file, then filter (the seed tutorials' way)
- mlkit cold: no index yet: scan the CSV into the columnar index, then query
- mlkit cached: the index exists: open it and query

The multi-class query is what `mlkit build-dataset --classes "Hot dog, B, C" --other 120`
asks: per class the images verified for it or its descendants (Hot dog with its 5 related
classes as members; B a mid-frequency class with a second one as its "descendant"; C
another), minus the ambiguous images verified for two of them, and 120 "other" images
verified for none. B and C are picked from the file itself by label frequency (ranks 200,
201 and 1000), so the synthetic file stays the one the binary figures were measured on.
It runs cold (a fresh index) and cached, against the same targets.

Then the next step of a build: the selected images' rows (URLs, attribution, Rotation) are
looked up in the image list, which Open Images does NOT sort by ImageID (the synthetic list
is shuffled the same way). mlkit converts it once to a Parquet copy sorted by ImageID and
reads only the row groups whose ImageID statistics can hold the selection; the figure
beside it is how many row groups a copy in the file's own (unsorted) order would have to
read for the same IDs.

"Cold" means the index does not exist yet; the CSV itself may sit in the OS page cache
(dropping that cache needs privileges these machines do not give).

    python bench/bench_selection.py [--rows 58000000] [--file PATH] [--skip-baseline]
                                    [--part all|binary|multiclass] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

POSITIVE = "/m/01b9xk"
RELATED = ["/m/05ztbl", "/m/07bp0z", "/m/07jl02", "/m/07vh6y", "/m/0bm1pg"]
NEGATIVES = 120
LOOKUP_POSITIVES = 400  # as `--max-positives 400`: the image-list rows a build looks up
SEED = 0
TARGETS = {"cold_seconds": 10.0, "cold_peak_mb": 1536.0, "cached_seconds": 1.0}


class TreePeak:
    """Peak resident memory of this process plus its children (worker processes),
    sampled every 20 ms from /proc (Linux); elsewhere, this process's max RSS."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tree(self) -> list[int]:
        pids, frontier = [], [os.getpid()]
        while frontier:
            pid = frontier.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        frontier.extend(int(c) for c in f.read().split())
            except OSError:
                pass
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(self._rss_kb(p) for p in self._tree()))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(self.peak_kb, own) / 1024.0


def run_baseline(csv: Path) -> dict:
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    with TreePeak() as peak:
        df = pd.read_csv(csv)
        pos = df.loc[(df.LabelName == POSITIVE) & (df.Confidence == 1), "ImageID"].unique()
        excluded = df.loc[df.LabelName.isin([POSITIVE, *RELATED]) & (df.Confidence == 1), "ImageID"].unique()
        all_ids = pd.Series(df.ImageID.unique())
        pool = all_ids[~all_ids.isin(excluded)].to_numpy()
        neg = pool[np.random.default_rng(SEED).choice(pool.size, size=NEGATIVES, replace=False)]
    return {"seconds": time.perf_counter() - t0, "positives": int(pos.size), "negatives": int(neg.size),
            "peak_mb": peak.mb}


def run_mlkit(csv: Path, cache: Path) -> dict:
    from toolkit.openimages.labelindex import open_label_index
    from toolkit.dataset.selection import sample_excluding

    t0 = time.perf_counter()
    with TreePeak() as peak:
        index = open_label_index(csv, cache)
        pos = index.images_with([POSITIVE], 1)
        excluded = index.images_with([POSITIVE, *RELATED], 1)
        neg = sample_excluding(index.images, excluded, NEGATIVES, SEED, "negatives")
    return {"seconds": time.perf_counter() - t0, "positives": int(pos.size), "negatives": int(neg.size),
            "peak_mb": peak.mb, "rows": index.rows, "images": int(index.images.size)}


MULTI_RANKS = (200, 201, 1000)  # label-frequency ranks of B, B's "descendant", and C
OTHER = 120


def three_classes(index) -> dict[str, list[str]]:
    """The 3-class query's members per class, from the file's own label frequencies."""
    ranked = sorted(index.counts().items(), key=lambda kv: (-kv[1], kv[0]))
    b, b_child, c = (ranked[r][0] for r in MULTI_RANKS)
    return {"hot_dog": [POSITIVE, *RELATED], "class_b": [b, b_child], "class_c": [c]}


def run_mlkit_multi(csv: Path, cache: Path) -> dict:
    from toolkit.openimages.labelindex import open_label_index
    from toolkit.dataset.selection import sample, sample_excluding, split_ambiguous

    t0 = time.perf_counter()
    with TreePeak() as peak:
        index = open_label_index(csv, cache)
        opened = time.perf_counter() - t0
        classes = three_classes(index)
        # as the build does: each class and the exclusion of "other" in one pass over the labels
        *found, excluded = index.images_with_each([*classes.values(),
                                                   [m for mids in classes.values() for m in mids]], 1)
        kept, ambiguous = split_ambiguous(dict(zip(classes, found)))
        chosen = {c: sample(ids, None, SEED, f"class:{c}") for c, ids in kept.items()}
        chosen["other"] = sample_excluding(index.images, excluded, OTHER, SEED, "other")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "open_seconds": opened, "query_seconds": seconds - opened,
            "counts": {c: int(v.size) for c, v in chosen.items()}, "ambiguous": int(ambiguous.size),
            "members": classes, "peak_mb": peak.mb, "rows": index.rows, "images": int(index.images.size)}


def _lookup_ids(csv: Path, cache: Path) -> list[str]:
    import numpy as np

    from toolkit.openimages.labelindex import ids_to_hex, open_label_index
    from toolkit.dataset.selection import sample_excluding

    index = open_label_index(csv, cache)
    pos = index.images_with([POSITIVE], 1)
    excluded = index.images_with([POSITIVE, *RELATED], 1)
    neg = sample_excluding(index.images, excluded, NEGATIVES, SEED, "negatives")
    pos = pos[np.random.default_rng(SEED).choice(pos.size, size=min(LOOKUP_POSITIVES, pos.size), replace=False)]
    return list(ids_to_hex(np.concatenate([pos, neg])))


def run_image_list(images: Path, labels: Path, cache: Path) -> dict:
    import bisect

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from toolkit.openimages.tablecache import ROW_GROUP_ROWS, open_csv_table

    ids = sorted(json.loads((cache / "lookup-ids.json").read_text()))  # written by the "ids" worker
    t0 = time.perf_counter()
    with TreePeak() as peak:
        table = open_csv_table(images, cache, ["ImageID", "OriginalURL"], kind="image list")
        opened = time.perf_counter() - t0
        t1 = time.perf_counter()
        rows = table.rows_for(ids)
        lookup = time.perf_counter() - t1
    seconds, peak_mb = time.perf_counter() - t0, peak.mb  # before the comparison below
    # the row groups a Parquet copy in the CSV's own order would have to read for these IDs
    unsorted_hits, start, carry = 0, 0, None
    reader = pacsv.open_csv(images, convert_options=pacsv.ConvertOptions(include_columns=["ImageID"]))
    for batch in reader:
        col = batch.column(0) if carry is None else pa.concat_arrays([carry, batch.column(0)])
        whole = len(col) - len(col) % ROW_GROUP_ROWS
        for g in range(0, whole, ROW_GROUP_ROWS):
            mm = pc.min_max(col.slice(g, ROW_GROUP_ROWS))
            unsorted_hits += bisect.bisect_left(ids, mm["min"].as_py()) < bisect.bisect_right(ids, mm["max"].as_py())
        carry = col.slice(whole)
    if carry is not None and len(carry):
        mm = pc.min_max(carry)
        unsorted_hits += bisect.bisect_left(ids, mm["min"].as_py()) < bisect.bisect_right(ids, mm["max"].as_py())
    return {"seconds": seconds, "open_seconds": opened, "lookup_seconds": lookup,
            "ids": len(ids), "found": rows.num_rows, "row_groups": table.row_groups,
            "row_groups_read": table.row_groups_read, "unsorted_row_groups_read": unsorted_hits,
            "peak_mb": peak_mb, "image_rows": table.count_rows()}


def _child(mode: str, csv: Path, cache: Path, images: Path | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--file", str(csv), "--cache", str(cache)]
    if images:
        cmd += ["--images", str(images)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=58_000_000)
    ap.add_argument("--file", type=Path, help="labels CSV to use (generated if missing)")
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--images", type=Path, help="image list CSV to use (generated with the labels if missing)")
    ap.add_argument("--worker", choices=["baseline", "mlkit", "multi", "ids", "images"], help=argparse.SUPPRESS)
    ap.add_argument("--part", choices=["all", "binary", "multiclass"], default="all",
                    help="binary: the --positive query and the image list; multiclass: the 3-class query only")
    ap.add_argument("--skip-baseline", action="store_true", help="skip pandas (needs ~9 GB and ~30 s)")
    ap.add_argument("--skip-image-list", action="store_true", help="skip the image-list lookup (~4 min cold)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    if args.worker:
        if args.worker == "ids":  # the selection, in its own process so it adds nothing to the next peak
            ids = _lookup_ids(args.file, args.cache)
            (args.cache / "lookup-ids.json").write_text(json.dumps(ids))
            result = {"ids": len(ids)}
        elif args.worker == "images":
            result = run_image_list(args.images, args.file, args.cache)
        elif args.worker == "multi":
            result = run_mlkit_multi(args.file, args.cache)
        else:
            result = run_baseline(args.file) if args.worker == "baseline" else run_mlkit(args.file, args.cache)
        print(json.dumps(result))
        return 0

    csv = args.file or HERE / "out" / f"labels-{args.rows}.csv"
    images = args.images or csv.with_name(f"images-{csv.stem}.csv")
    if not csv.is_file() or not images.is_file():
        csv.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {csv} ({args.rows:,} rows) and {images.name} ...", file=sys.stderr)
        # in a child process: Linux carries a process's peak RSS across fork and exec into
        # its children's ru_maxrss, so generating here (~1.7 GB) would inflate every peak below
        plant = [f"--plant={m}:{n}" for m, n in {POSITIVE: 20_000, **{m: 400 for m in RELATED}}.items()]
        subprocess.run([sys.executable, str(HERE / "synth_labels.py"), str(csv), "--rows", str(args.rows),
                        "--seed", "0", *plant, "--images", str(images)], check=True)
    size_mb = csv.stat().st_size / 1e6
    if args.part == "multiclass":
        return multiclass_report(csv, args.json)
    cache = Path(tempfile.mkdtemp(prefix="mlkit-bench-"))
    try:
        cold = _child("mlkit", csv, cache)
        cached = _child("mlkit", csv, cache)
        baseline = None if args.skip_baseline else _child("baseline", csv, cache)
        image_cold = image_cached = None
        if not args.skip_image_list:
            _child("ids", csv, cache)
            image_cold = _child("images", csv, cache, images)
            image_cached = _child("images", csv, cache, images)
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    ok = {
        "cold_seconds": cold["seconds"] <= TARGETS["cold_seconds"],
        "cold_peak_mb": cold["peak_mb"] <= TARGETS["cold_peak_mb"],
        "cached_seconds": cached["seconds"] <= TARGETS["cached_seconds"],
    }
    if baseline and (baseline["positives"], baseline["negatives"]) != (cold["positives"], cold["negatives"]):
        ok["same_answer"] = False
    report = {"file": str(csv), "file_mb": round(size_mb, 1), "rows": cold.get("rows"), "images": cold.get("images"),
              "cpu_count": os.cpu_count(), "baseline": baseline, "cold": cold, "cached": cached,
              "image_list": None if image_cold is None else {
                  "file": str(images), "file_mb": round(images.stat().st_size / 1e6, 1), "cold": image_cold,
                  "cached": image_cached},
              "targets": TARGETS, "met": ok}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"labels file: {csv.name}, {size_mb:,.0f} MB, {cold['rows']:,} rows, {cold['images']:,} images, "
              f"{os.cpu_count()} CPUs")
        print(f"{'':28}{'seconds':>10}{'peak MB':>10}{'positives':>11}{'negatives':>11}")
        rows = [("pandas.read_csv + filter", baseline), ("mlkit cold (index + query)", cold),
                ("mlkit cached (query)", cached)]
        for label, r in rows:
            if r is None:
                print(f"{label:28}{'skipped':>10}")
                continue
            print(f"{label:28}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{r['positives']:>11,}{r['negatives']:>11,}")
        if baseline:
            print(f"vs baseline: cold {baseline['seconds'] / cold['seconds']:.1f}x as fast with "
                  f"{cold['peak_mb'] / baseline['peak_mb']:.0%} of its peak memory; cached "
                  f"{baseline['seconds'] / cached['seconds']:.0f}x as fast")
        ic, ik = image_cold, image_cached
        if ic is None:
            print("image list: skipped")
    if image_cold is not None and not args.json:
        print(f"image list (unsorted, like the real one): {images.name}, {images.stat().st_size / 1e6:,.0f} MB, "
              f"{ic['image_rows']:,} rows; lookup of {ic['ids']:,} selected IDs ({ic['found']:,} found)")
        print(f"{'':28}{'seconds':>10}{'peak MB':>10}{'row groups read':>17}")
        print(f"{'cold (sorted copy + lookup)':28}{ic['seconds']:>10.2f}{ic['peak_mb']:>10.0f}"
              f"{ic['row_groups_read']:>8} / {ic['row_groups']}")
        print(f"{'cached (lookup only)':28}{ik['lookup_seconds']:>10.2f}{ik['peak_mb']:>10.0f}"
              f"{ik['row_groups_read']:>8} / {ik['row_groups']}")
        print(f"{'copy in file order (before)':28}{'':>10}{'':>10}{ic['unsorted_row_groups_read']:>8} / "
              f"{ic['row_groups']}")
    if not args.json:
        print("targets: cold <= 10 s and <= 1536 MB, cached <= 1 s: "
              + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in ok.items()))
    multi = 0 if args.part == "binary" else multiclass_report(csv, args.json)
    return 0 if all(ok.values()) and multi == 0 else 1


def multiclass_report(csv: Path, as_json: bool) -> int:
    """The 3-class query, cold (fresh index) then cached, each in its own process."""
    cache = Path(tempfile.mkdtemp(prefix="mlkit-bench-multi-"))
    try:
        cold = _child("multi", csv, cache)
        cached = _child("multi", csv, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    ok = {"cold_seconds": cold["seconds"] <= TARGETS["cold_seconds"],
          "cold_peak_mb": cold["peak_mb"] <= TARGETS["cold_peak_mb"],
          "cached_seconds": cached["seconds"] <= TARGETS["cached_seconds"],
          "same_answer": cold["counts"] == cached["counts"] and cold["ambiguous"] == cached["ambiguous"]}
    if as_json:
        print(json.dumps({"multiclass": {"cold": cold, "cached": cached, "targets": TARGETS, "met": ok}}, indent=2))
    else:
        print(f"3-class query (--classes \"Hot dog, B, C\" --other {OTHER}): members {cold['members']}")
        print(f"{'':28}{'seconds':>10}{'query s':>10}{'peak MB':>10}  images per class, ambiguous")
        for label, r in (("mlkit cold (index + query)", cold), ("mlkit cached (query)", cached)):
            print(f"{label:28}{r['seconds']:>10.2f}{r['query_seconds']:>10.2f}{r['peak_mb']:>10.0f}  "
                  f"{r['counts']}, {r['ambiguous']:,}")
        print("targets: cold <= 10 s and <= 1536 MB, cached <= 1 s: "
              + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in ok.items()))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
