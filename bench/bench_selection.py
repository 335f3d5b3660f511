"""Selection on a labels file of the real size: mlkit's columnar index vs pandas.read_csv.

The query is what `mlkit build-dataset --positive "Hot dog" --negatives 120` asks of the
v7 train labels: images with a verified Hot dog label (Confidence 1), and 120 negatives
drawn from all other images, excluding anything verified to show Hot dog or a related
class. Each variant runs in its own process, so its peak memory (max RSS) is its own:

- baseline: ``pandas.read_csv`` of the whole file, then filter (the seed tutorials' way)
- mlkit cold: no index yet: scan the CSV into the columnar index, then query
- mlkit cached: the index exists: open it and query

"Cold" means the index does not exist yet; the CSV itself may sit in the OS page cache
(dropping that cache needs privileges these machines do not give).

    python bench/bench_selection.py [--rows 58000000] [--file PATH] [--skip-baseline] [--json]
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
    from toolkit.selection import sample_excluding

    t0 = time.perf_counter()
    with TreePeak() as peak:
        index = open_label_index(csv, cache, progress=False)
        pos = index.images_with([POSITIVE], 1)
        excluded = index.images_with([POSITIVE, *RELATED], 1)
        neg = sample_excluding(index.images, excluded, NEGATIVES, SEED, "negatives")
    return {"seconds": time.perf_counter() - t0, "positives": int(pos.size), "negatives": int(neg.size),
            "peak_mb": peak.mb, "rows": index.rows, "images": int(index.images.size)}


def _child(mode: str, csv: Path, cache: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--file", str(csv), "--cache", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=58_000_000)
    ap.add_argument("--file", type=Path, help="labels CSV to use (generated if missing)")
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=["baseline", "mlkit"], help=argparse.SUPPRESS)
    ap.add_argument("--skip-baseline", action="store_true", help="skip pandas (needs ~9 GB and ~30 s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    if args.worker:
        result = run_baseline(args.file) if args.worker == "baseline" else run_mlkit(args.file, args.cache)
        print(json.dumps(result))
        return 0

    csv = args.file or HERE / "out" / f"labels-{args.rows}.csv"
    if not csv.is_file():
        from synth_labels import write

        csv.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {csv} ({args.rows:,} rows) ...", file=sys.stderr)
        write(csv, args.rows, seed=0, plant={POSITIVE: 20_000, **{m: 400 for m in RELATED}})
    size_mb = csv.stat().st_size / 1e6
    cache = Path(tempfile.mkdtemp(prefix="mlkit-bench-"))
    try:
        cold = _child("mlkit", csv, cache)
        cached = _child("mlkit", csv, cache)
        baseline = None if args.skip_baseline else _child("baseline", csv, cache)
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
        print("targets: cold <= 10 s and <= 1536 MB, cached <= 1 s: "
              + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in ok.items()))
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
