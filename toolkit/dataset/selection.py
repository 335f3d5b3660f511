"""Which images a dataset takes: positives, negatives, balancing and the split.

Pure logic over arrays of ImageIDs (uint64, see ``openimages.labelindex``): no I/O, so it
is tested fast and exhaustively. Every random choice goes through ``numpy.random.Generator``
seeded by the user's ``--seed`` and depends only on the (sorted) inputs, so the same
inputs and seed always give the same dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MlkitError, ParameterError

BALANCE_MODES = ("weights", "undersample", "oversample", "none")
"""How an unequal number of positives and negatives is handled:

- ``weights`` (default): keep every image; training weighs each class by
  ``total / (classes * count)`` so both count equally.
- ``undersample``: drop images of the larger class (seeded) until both are equal.
- ``oversample``: keep every image; training repeats the smaller class ``repeat`` times.
- ``none``: keep every image, no correction.
"""


def sample(pool: np.ndarray, n: int | None, seed: int, salt: str) -> np.ndarray:
    """``n`` distinct items of ``pool`` (all if ``n`` is None or larger), chosen by a
    generator seeded with (seed, salt), returned sorted. ``pool`` must be sorted unique."""
    if n is None or n >= pool.size:
        return pool.copy()
    if n <= 0:
        return pool[:0].copy()
    rng = np.random.default_rng(_seed_for(seed, salt))
    picked = rng.choice(pool.size, size=n, replace=False)
    return np.sort(pool[picked])


def _seed_for(seed: int, salt: str) -> list[int]:
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def sample_excluding(pool: np.ndarray, exclude: np.ndarray, n: int | None, seed: int,
                     salt: str) -> np.ndarray:
    """Like ``sample`` over ``pool`` minus ``exclude``, without materialising the set
    difference of a 9M-image pool: draw a few more than needed, drop excluded ones, and
    draw again in the rare case that was not enough."""
    if n is None or exclude.size == 0 or n >= pool.size:
        return sample(np.setdiff1d(pool, exclude, assume_unique=True), n, seed, salt)
    if n <= 0:
        return pool[:0].copy()
    rng = np.random.default_rng(_seed_for(seed, salt))
    exclude = _sorted(exclude)
    want = n
    taken = np.zeros(0, dtype=pool.dtype)
    attempts = 0
    while taken.size < n and attempts < 6:
        extra = int(want * (1.0 + exclude.size / max(pool.size, 1)) * 1.2) + 16
        idx = rng.choice(pool.size, size=min(pool.size, extra), replace=False)
        cand = pool[idx]
        cand = cand[~_in_sorted(cand, exclude)]
        cand = cand[~np.isin(cand, taken)]
        taken = np.concatenate([taken, cand[: n - taken.size]])
        want = n - taken.size
        attempts += 1
    if taken.size < n:  # pathological: most of the pool is excluded; do it exactly
        return sample(np.setdiff1d(pool, exclude, assume_unique=True), n, seed, salt)
    return np.sort(taken)


def split_ambiguous(candidates: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per class, its candidate images (sorted unique uint64 ImageIDs) minus those that are
    candidates of two or more classes; and those ambiguous images, sorted. An image that
    shows two of the classes could be taught as either, so a multi-class dataset leaves it
    out rather than guess."""
    arrays = [a for a in candidates.values() if a.size]
    if not arrays:
        return {c: a.copy() for c, a in candidates.items()}, np.zeros(0, dtype=np.uint64)
    ids, times = np.unique(np.concatenate(arrays), return_counts=True)
    ambiguous = ids[times > 1]
    return ({c: np.setdiff1d(a, ambiguous, assume_unique=True) for c, a in candidates.items()}, ambiguous)


def union_of(by_split: Mapping[str, np.ndarray]) -> np.ndarray:
    """The sorted unique ImageIDs of all the arrays (one per Open Images split)."""
    arrays = [a for a in by_split.values() if a.size]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.uint64)


def _sorted(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it is sorted already (the ImageID arrays here always are), else a sorted copy."""
    return a if a.size < 2 or bool(np.all(a[1:] >= a[:-1])) else np.sort(a)


def _in_sorted(values: np.ndarray, sorted_array: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_array)`` by binary search: a few candidates against ~1M excluded
    images costs microseconds, where ``np.isin`` sorts all of them again (~1 s at 58M rows)."""
    if sorted_array.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_array, values), sorted_array.size - 1)
    return sorted_array[pos] == values


@dataclass(frozen=True)
class Balance:
    mode: str
    counts: dict[str, int]          # images kept per class
    class_weights: dict[str, float]  # loss weight per class (1.0 unless mode == "weights")
    repeat: dict[str, int]          # times each class is repeated per epoch (oversample)
    dropped: dict[str, int]         # images dropped per class (undersample)


def balance_counts(counts: Mapping[str, int], mode: str) -> Balance:
    """Decide kept counts, class weights and repeats for ``mode`` (see BALANCE_MODES)."""
    if mode not in BALANCE_MODES:
        raise MlkitError(f"unknown --balance {mode!r}; choose one of {', '.join(BALANCE_MODES)}")
    counts = {k: int(v) for k, v in counts.items()}
    if any(v <= 0 for v in counts.values()):
        empty = [k for k, v in counts.items() if v <= 0]
        raise MlkitError(f"no images for class(es) {', '.join(empty)}: a classifier needs "
                         "examples of every class; widen the selection (--split, --negatives, "
                         "--include-related) or choose another class")
    k = len(counts)
    total = sum(counts.values())
    kept = dict(counts)
    weights = {c: 1.0 for c in counts}
    repeat = {c: 1 for c in counts}
    if mode == "undersample":
        smallest = min(counts.values())
        kept = {c: smallest for c in counts}
    elif mode == "oversample":
        largest = max(counts.values())
        repeat = {c: max(1, round(largest / n)) for c, n in counts.items()}
    elif mode == "weights":
        weights = {c: round(total / (k * n), 6) for c, n in counts.items()}
    dropped = {c: counts[c] - kept[c] for c in counts}
    return Balance(mode=mode, counts=kept, class_weights=weights, repeat=repeat, dropped=dropped)


def assign_splits(ids_by_class: Mapping[str, Sequence[str]], val: float, test: float,
                  seed: int) -> dict[str, str]:
    """ImageID -> "train" | "val" | "test", stratified per class and deterministic.

    Each class's images are ordered by a seeded hash of their ID, and the first
    ``round(n * test)`` go to test, the next ``round(n * val)`` to val. Where a class has
    enough images (3 or more) and a fraction is positive, that split gets at least one.
    An image listed under two classes keeps its first assignment (it never lands in two
    splits).
    """
    for param, value in (("val", val), ("test", test)):
        if not 0 <= value < 1:
            raise ParameterError(param, value, "must be a fraction in [0, 1), with --val + --test below 1")
    if val + test >= 1:
        raise MlkitError(f"--val ({val}) and --test ({test}) must be fractions in [0, 1) "
                         "that leave room for training (val + test < 1)")
    out: dict[str, str] = {}
    for cls in sorted(ids_by_class):
        ids = [i for i in dict.fromkeys(ids_by_class[cls]) if i not in out]
        ids.sort(key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
        n = len(ids)
        n_test = round(n * test)
        n_val = round(n * val)
        if n >= 3:
            n_test = max(n_test, 1 if test > 0 else 0)
            n_val = max(n_val, 1 if val > 0 else 0)
        n_test = min(n_test, max(n - 1, 0))
        n_val = min(n_val, max(n - 1 - n_test, 0))
        for j, image_id in enumerate(ids):
            out[image_id] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    return out


def class_folder_name(display_name: str) -> str:
    """A folder-safe class name: 'Hot dog' -> 'hot_dog'."""
    out = "".join(ch if ch.isalnum() else "_" for ch in display_name.casefold())
    out = "_".join(p for p in out.split("_") if p)
    return out or "class"


def negative_folder_name(positive_folder: str) -> str:
    return f"not_{positive_folder}"
