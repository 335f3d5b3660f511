"""Write a synthetic Open Images human-verified labels CSV of the real size and schema.

``ImageID,Source,LabelName,Confidence`` with 16-hex-digit image IDs grouped by image (as in
the official file), MIDs drawn with a long-tailed distribution over ~20k classes, about
6.4 labels per image, Confidence 1 or 0. Default: 58 million rows (~2.5 GB), the size of
``v7/oidv7-train-annotations-human-imagelabels.csv``.

With ``--images LIST.csv`` it also writes the image list of the same images
(``ImageID,Subset,OriginalURL,...,Rotation``, ~300 bytes a row like the v6 train list) in a
random row order: the official image lists are NOT sorted by ImageID (a third-party check
of the real files found ``4fa8054781a4c382`` before ``d05c3e451f79174d``), unlike the
label files, so a benchmark on a sorted synthetic list would flatter any lookup that
relies on order.

    python bench/synth_labels.py OUT.csv [--rows 58000000] [--seed 0] [--plant /m/01b9xk:20000]
                                 [--images LIST.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
B36 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz_", dtype=np.uint8)


def _mids(n: int, rng: np.random.Generator) -> list[str]:
    out, seen = [], set()
    while len(out) < n:
        k = int(rng.integers(4, 8))
        prefix = "/m/0" if rng.random() < 0.9 else "/g/11"
        mid = prefix + bytes(B36[rng.integers(0, 37, size=k)]).decode()
        if mid not in seen:
            seen.add(mid)
            out.append(mid)
    return out


def _hex_ids(values: np.ndarray) -> pa.Array:
    nibbles = (values[:, None] >> np.arange(60, -4, -4, dtype=np.uint64)) & np.uint64(15)
    chars = HEX[nibbles.astype(np.intp)]
    return pa.array(chars.view("S16").ravel()).cast(pa.string())


def write(path: Path, rows: int, seed: int = 0, plant: dict[str, int] | None = None,
          n_classes: int = 19994, chunk: int = 2_000_000, images: Path | None = None) -> None:
    rng = np.random.default_rng(seed)
    mids = _mids(n_classes, rng)
    plant = plant or {}
    for mid in plant:
        if mid not in mids:
            mids[len(plant) + 10 + list(plant).index(mid)] = mid
    mid_arr = pa.array(mids)
    # long-tailed class frequencies, like real label counts
    weights = 1.0 / np.arange(1, n_classes + 1) ** 0.9
    weights /= weights.sum()
    planted_idx = {mids.index(m): n for m, n in plant.items()}
    sources = pa.array(["verification", "crowdsource-verification"])
    schema_cols = ["ImageID", "Source", "LabelName", "Confidence"]
    next_image = int(rng.integers(0, 2**40))  # 58M rows x 2^33 gaps stays below 2^64
    written = 0
    image_chunks: list[np.ndarray] = []
    t0 = time.time()
    with open(path, "wb") as sink:
        sink.write((",".join(schema_cols) + "\n").encode())
        w = pacsv.CSVWriter(sink, pa.schema([(c, pa.string()) for c in schema_cols]),
                            write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
        while written < rows:
            n = min(chunk, rows - written)
            per_image = rng.integers(1, 13, size=n // 6 + 2)
            starts = np.repeat(np.arange(per_image.size), per_image)[:n]
            # increasing random gaps: IDs look random but rows stay sorted by ImageID, as in
            # the official files
            gaps = rng.integers(1, 2**33, size=int(starts[-1]) + 1, dtype=np.uint64)
            image_vals = (np.uint64(next_image) + np.cumsum(gaps, dtype=np.uint64))[starts]
            next_image = int(image_vals[-1]) + 1
            if images is not None:
                image_chunks.append(np.unique(image_vals))
            label_idx = rng.choice(n_classes, size=n, p=weights)
            for idx, count in planted_idx.items():  # plant a known number of rows per chunk
                share = max(1, count * n // rows)
                pos = rng.choice(n, size=share, replace=False)
                label_idx[pos] = idx
            conf = np.where(rng.random(n) < 0.62, "1", "0")
            table = pa.table({
                "ImageID": _hex_ids(image_vals),
                "Source": pc.take(sources, pa.array(rng.integers(0, 2, size=n))),
                "LabelName": pc.take(mid_arr, pa.array(label_idx)),
                "Confidence": pa.array(conf),
            })
            w.write_table(table)
            written += n
            print(f"\r{written:,} rows  {time.time() - t0:.0f} s", end="", file=sys.stderr)
        w.close()
    print(file=sys.stderr)
    if images is not None:
        write_image_list(images, np.unique(np.concatenate(image_chunks)), seed)


def write_image_list(path: Path, image_vals: np.ndarray, seed: int = 0, chunk: int = 1_000_000) -> None:
    """The image list of ``image_vals`` (uint64 IDs) in a random order, as unsorted as the real one."""
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(image_vals)
    cols = ["ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License", "AuthorProfileURL",
            "Author", "Title", "OriginalSize", "OriginalMD5", "Thumbnail300KURL", "Rotation"]
    t0 = time.time()
    with open(path, "wb") as sink:
        sink.write((",".join(cols) + "\n").encode())
        w = pacsv.CSVWriter(sink, pa.schema([(c, pa.string()) for c in cols]),
                            write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
        for start in range(0, order.size, chunk):
            vals = order[start:start + chunk]
            n = vals.size
            ids = _hex_ids(vals)
            farm = pa.array(rng.integers(1, 9, size=n).astype(str))
            photo = pa.array(rng.integers(10**9, 10**10, size=n).astype(str))
            secret = _hex_ids(rng.integers(0, 2**63, size=n, dtype=np.uint64))
            user = pa.array(rng.integers(10**7, 10**8, size=n).astype(str))
            join = pc.binary_join_element_wise
            table = pa.table({
                "ImageID": ids,
                "Subset": pa.array(["train"] * n),
                "OriginalURL": join("https://farm", farm, ".staticflickr.com/", photo, "_", secret, "_o.jpg", ""),
                "OriginalLandingURL": join("https://www.flickr.com/photos/", user, "@N0", farm, "/", photo, ""),
                "License": pa.array(["https://creativecommons.org/licenses/by/2.0/"] * n),
                "AuthorProfileURL": join("https://www.flickr.com/people/", user, "@N0", farm, "/", ""),
                "Author": join("Author ", user, ""),
                "Title": join("Photo ", photo, ""),
                "OriginalSize": pa.array(rng.integers(50_000, 6_000_000, size=n).astype(str)),
                "OriginalMD5": join(secret, "==", ""),
                "Thumbnail300KURL": join("https://c", farm, ".staticflickr.com/", farm, "/", photo, "_",
                                         secret, "_z.jpg", ""),
                "Rotation": pa.array(np.where(rng.random(n) < 0.026, "90.0", "0.0")),
            })
            w.write_table(table)
            print(f"\rimage list {start + n:,} rows  {time.time() - t0:.0f} s", end="", file=sys.stderr)
        w.close()
    print(file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=58_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plant", action="append", default=[], help="MID:ROWS, a class guaranteed to appear")
    ap.add_argument("--images", type=Path, help="also write the (unsorted) image list of the same images here")
    args = ap.parse_args()
    plant = {p.rsplit(":", 1)[0]: int(p.rsplit(":", 1)[1]) for p in args.plant}
    write(args.out, args.rows, args.seed, plant, images=args.images)


if __name__ == "__main__":
    main()
