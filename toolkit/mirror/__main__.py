"""``python -m toolkit.mirror DIR [--port N]``: generate a mirror into DIR and serve it."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from toolkit.mirror.generate import start_mirror


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m toolkit.mirror",
        description="Generate a small Open Images mirror into DIR and serve it on 127.0.0.1 until Ctrl-C.",
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="folder to generate the mirror into (created if missing)")
    parser.add_argument("--port", type=int, default=0, help="port to serve on (default: 0, any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated mirror (default: 0)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, not {args.port}")

    started = time.perf_counter()
    try:
        server, info = start_mirror(args.dir, seed=args.seed, port=args.port)
    except OSError as exc:
        print(f"error: cannot serve {args.dir} on port {args.port}: {exc}; choose another --port", file=sys.stderr)
        return 2
    n_images = len(info.images)
    print(f"generated {n_images} images into {info.root} in {time.perf_counter() - started:.1f} s")
    print(f"metadata base: {info.metadata_base}")
    print(f"images base:   {info.images_base}")
    print("serving; press Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
