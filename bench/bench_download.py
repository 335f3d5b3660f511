"""Benchmark: sequential urlretrieve vs download_images, then download_images under faults.

    .venv/bin/python bench/bench_download.py [--images 300] [--latency 0.05] [--json]

Serves deterministic ~100 KB JPEGs (640x480, gradients + noise) from a local
MirrorServer that adds ``latency`` seconds before every response. The server runs in a
child process, as a remote host would (in-process, its request handling would compete
with the client for the GIL). Runs:

1. baseline: a sequential ``urllib.request.urlretrieve`` loop;
2. ``download_images`` with default options;
3. the same with 10% random faults (HTTP 5xx, connection resets, truncated bodies).

Targets (exit status 1 when one is missed): speedup of (2) over (1) >= 15x; in (3)
every image arrives, no failure, and every file decodes and has the served bytes' MD5.

download_images does more per image than the baseline (a full decode check, MD5, fsync,
atomic rename: about 4 ms of client CPU against 1.3 ms), so once the latency is hidden
it is CPU-bound, and the server (about 0.8 ms of CPU per request) shares the machine:
the speedup depends on how much of the machine's CPU is free. The table shows the CPU
each run cost the client and the server per image and, to judge how comparable runs are,
the CPU other processes took meanwhile and the share of time the hypervisor stole (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from toolkit.dataset.download import DownloadJob, DownloadOptions, ImageSource, download_images  # noqa: E402
from toolkit.mirror.faults import FaultPlan  # noqa: E402
from toolkit.mirror.server import MirrorServer  # noqa: E402

SPEEDUP_TARGET = 15.0
FAULT_RATE = 0.1


def make_images(folder: Path, count: int) -> list[Path]:
    """Deterministic 640x480 JPEGs of about 100 KB: smooth gradients plus grain."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(count):
        rng = np.random.default_rng(i)
        fx, fy, phase = rng.uniform(0.005, 0.03, 2).tolist() + [rng.uniform(0, 6.28)]
        base = np.stack([
            127 + 100 * np.sin(xx * fx + phase),
            127 + 100 * np.cos(yy * fy - phase),
            127 + 100 * np.sin((xx + yy) * (fx + fy) / 2),
        ], axis=-1)
        grain = rng.normal(0, 15, (h, w, 3))
        pixels = np.clip(base + grain, 0, 255).astype(np.uint8)
        path = folder / f"{i:016x}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=85)
        paths.append(path)
    return paths


class ServerProcess:
    """A MirrorServer in a child process, as a real remote host would be: its request
    handling does not compete with the client for the client's GIL."""

    def __init__(self, root: Path, plan: dict) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(str(root), plan, child), daemon=True)
        self._proc.start()
        self.url = self._conn.recv()

    def _call(self, *message: object) -> object:
        self._conn.send(message)
        return self._conn.recv()

    def set_faults(self, plan: dict) -> None:
        self._call("faults", plan)

    def requests(self) -> dict[str, int]:
        return self._call("requests")  # type: ignore[return-value]

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far."""
        return self._call("cpu")  # type: ignore[return-value]

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._call("stop")
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.kill()


def _serve(root: str, plan: dict, conn) -> None:  # type: ignore[no-untyped-def]
    with MirrorServer(root, faults=FaultPlan(**plan)) as srv:
        conn.send(srv.url)
        while True:
            command, *args = conn.recv()
            if command == "faults":
                srv.set_faults(FaultPlan(**args[0]))
                srv.requests.clear()
                conn.send(None)
            elif command == "requests":
                conn.send(dict(srv.requests))
            elif command == "cpu":
                conn.send(cpu_seconds())
            else:
                conn.send(None)
                return


def cpu_seconds() -> float:
    """CPU time of this process (the client, or the server in its own process)."""
    t = os.times()
    return t.user + t.system


def machine_cpu() -> tuple[float, float, float] | None:
    """Seconds of CPU the whole machine has spent busy, in all, and stolen by the
    hypervisor (Linux /proc/stat; None elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, sum(fields) / tick, steal / tick


@contextlib.contextmanager
def measured(srv: ServerProcess, row: dict) -> Iterator[None]:
    """Put into ``row`` the CPU seconds the block cost the client, the server and the
    machine's other processes, and the share of the machine's time the hypervisor stole:
    the last two say how comparable a run is."""
    client, server, machine = cpu_seconds(), srv.cpu_seconds(), machine_cpu()
    yield
    row["client_cpu_s"] = cpu_seconds() - client
    row["server_cpu_s"] = srv.cpu_seconds() - server
    after = machine_cpu()
    if machine is not None and after is not None:
        busy, total, steal = (b - a for a, b in zip(machine, after))
        row["others_cpu_s"] = max(0.0, busy - row["client_cpu_s"] - row["server_cpu_s"])
        row["steal_pct"] = 100 * steal / total if total else 0.0


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def run_baseline(urls: list[str], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for url in urls:
        urllib.request.urlretrieve(url, out / url.rsplit("/", 1)[1])
    return time.perf_counter() - start


def jobs_for(urls: list[str], out: Path) -> list[DownloadJob]:
    return [
        DownloadJob(key=url.rsplit("/", 1)[1][:-4], dest=out / url.rsplit("/", 1)[1],
                    sources=(ImageSource(url, "cvdf"),))
        for url in urls
    ]


def check_files(jobs: list[DownloadJob], served: dict[str, str]) -> int:
    """Number of dests that are missing, do not decode, or differ from the served bytes."""
    bad = 0
    for job in jobs:
        try:
            with Image.open(job.dest) as img:
                img.load()
            if md5_file(job.dest) != served[job.dest.name]:
                bad += 1
        except Exception:
            bad += 1
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300, help="images to serve (default 300)")
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, s (default 0.05)")
    parser.add_argument("--workers", type=int, default=None,
                        help="download_images workers (default: DownloadOptions' default)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mlkit-bench-") as tmp:
        tmp_path = Path(tmp)
        files = make_images(tmp_path / "root" / "train", args.images)
        served = {p.name: md5_file(p) for p in files}
        total_bytes = sum(p.stat().st_size for p in files)
        options = DownloadOptions()
        if args.workers is not None:
            options.workers = args.workers

        with ServerProcess(tmp_path / "root", {"latency": args.latency}) as srv:
            urls = [f"{srv.url}/train/{p.name}" for p in files]
            load_before = os.getloadavg()[0]
            base_row: dict = {}
            with measured(srv, base_row):
                base_s = run_baseline(urls, tmp_path / "baseline")
            base_bad = sum(md5_file(tmp_path / "baseline" / n) != m for n, m in served.items())

            clean_jobs = jobs_for(urls, tmp_path / "clean")
            clean_row: dict = {}
            with measured(srv, clean_row):
                clean = download_images(clean_jobs, options)
            clean_bad = check_files(clean_jobs, served)

            srv.set_faults({"rate": FAULT_RATE, "kinds": ("status", "reset", "truncate"),
                            "seed": 0, "latency": args.latency})
            fault_jobs = jobs_for(urls, tmp_path / "faults")
            fault_row: dict = {}
            with measured(srv, fault_row):
                faulty = download_images(fault_jobs, options)
            fault_bad = check_files(fault_jobs, served)
            fault_requests = sum(srv.requests().values())

    mb = total_bytes / 1e6
    rows = {
        "baseline": {"wall_s": base_s, "ok": args.images - base_bad, "requests": args.images, **base_row},
        "download_images": {"wall_s": clean.elapsed, "ok": len(clean.ok()),
                            "requests": sum(o.attempts for o in clean.outcomes), **clean_row},
        "download_images+faults": {"wall_s": faulty.elapsed, "ok": len(faulty.ok()),
                                   "requests": sum(o.attempts for o in faulty.outcomes), **fault_row},
    }
    for row in rows.values():
        row["images_per_s"] = args.images / row["wall_s"]
        row["mb_per_s"] = mb / row["wall_s"]
        row["speedup"] = base_s / row["wall_s"]
        row["client_cpu_ms_per_image"] = row["client_cpu_s"] / args.images * 1e3
        row["server_cpu_ms_per_image"] = row["server_cpu_s"] / args.images * 1e3
    retries = rows["download_images+faults"]["requests"] - args.images
    speedup = rows["download_images"]["speedup"]
    checks = {
        f"speedup >= {SPEEDUP_TARGET:g}x": speedup >= SPEEDUP_TARGET,
        "clean run: every image, no corrupt file": len(clean.ok()) == args.images and clean_bad == 0,
        "fault run: every image arrived": len(faulty.ok()) == args.images,
        "fault run: zero corrupt files (decode + MD5 of served bytes)": fault_bad == 0,
        "fault run: failures by reason = none": not faulty.failures_by_reason(),
    }
    result = {
        "images": args.images, "total_mb": mb, "mean_kb": total_bytes / args.images / 1e3,
        "latency_s": args.latency, "workers": options.workers, "fault_rate": FAULT_RATE,
        "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
        "runs": rows, "fault_run": {
            "retries": retries, "server_requests": fault_requests,
            "failures_by_reason": faulty.failures_by_reason(), "corrupt_files": fault_bad,
        },
        "checks": checks, "passed": all(checks.values()),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.images} images, {result['mean_kb']:.0f} KB mean ({mb:.1f} MB), "
              f"server latency {args.latency * 1000:.0f} ms/request, workers={options.workers}")
        print(f"{os.cpu_count()} CPUs; load average {load_before:.2f} before, {result['load_average_after']:.2f} after "
              "(other work on the machine takes CPU from this run)")
        print(f"{'run':<24}{'wall s':>8}{'img/s':>8}{'MB/s':>7}{'speedup':>9}{'ok':>5}{'requests':>9}"
              f"{'CPU ms/img: client':>20}{'server':>7}{'others CPU s':>14}{'steal':>7}")
        for name, row in rows.items():
            others = f"{row['others_cpu_s']:.2f}" if "others_cpu_s" in row else "-"
            steal = f"{row['steal_pct']:.0f}%" if "steal_pct" in row else "-"
            print(f"{name:<24}{row['wall_s']:>8.2f}{row['images_per_s']:>8.1f}{row['mb_per_s']:>7.2f}"
                  f"{row['speedup']:>8.1f}x{row['ok']:>5}{row['requests']:>9}"
                  f"{row['client_cpu_ms_per_image']:>20.2f}{row['server_cpu_ms_per_image']:>7.2f}{others:>14}{steal:>7}")
        print(f"fault run ({FAULT_RATE:.0%} status/reset/truncate): retries made {retries}, "
              f"failures by reason {faulty.failures_by_reason() or 'none'}, corrupt files {fault_bad}")
        for name, passed in checks.items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
