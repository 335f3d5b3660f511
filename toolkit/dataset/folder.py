"""Any folder of class subfolders as a dataset: what ``mlkit train DIR`` reads when DIR has
no ``dataset.json``.

Two layouts are read (Create ML's and Keras' ``image_dataset_from_directory``'s):

    DIR/<class>/*.jpg                      split here: --val and --test of each class
    DIR/train/<class>/*.jpg                split already; a missing val/ (or validation/)
    DIR/val/<class>/*.jpg                  or test/ is carved from train/ with --val / --test
    DIR/test/<class>/*.jpg

Images are found under each class folder at any depth (hidden files and folders skipped),
and are never copied. The split is a pure function of the files' paths, the fractions and
the seed (``assign_splits``): each class's files are ordered by a seeded hash of their
path, then the first ``round(n * test)`` go to test and the next ``round(n * val)`` to val
(at least one each while the class has three or more images). ``model.json`` records the
seed and fractions (``source``) and the folder's content hash, computed as for mlkit's own
datasets (SHA-256 over ``path md5`` lines), so evaluate, export and validate find the same
split again, and notice when the folder changed.

Class order: sorted by name, except that a catch-all class (``other``, ``background``,
``none``, ``not_*``, ``non_*``, ``no_*``) goes last, as ``build-dataset`` puts ``other``
last; for two classes the first is the positive one (``hot_dog`` before ``not_hot_dog``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlkitError, ParameterError
from ..progress import SILENT, Reporter
from .manifest import DATASET_JSON, IMAGE_SUFFIXES
from .unreadable import decoder_message, unreadable_error

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
# Files that only a build of `mlkit build-dataset` leaves: such a folder without dataset.json
# is an unfinished build, not a plain folder (rerunning the build finishes it).
BUILD_MARKERS = ("manifest.csv", "ATTRIBUTION.md", ".build.json")
_CATCH_ALL = re.compile(r"^(other|others|background|none|unknown|(not|non|no)[_ -].+)$", re.IGNORECASE)


@dataclass(frozen=True)
class FolderSplit:
    """How a plain folder is split: fractions of each class for val and test, and the seed."""

    val: float = 0.1
    test: float = 0.1
    seed: int = 0

    def check(self) -> None:
        for key in ("val", "test"):
            v = getattr(self, key)
            if not 0 <= v < 1:
                raise ParameterError(key, v, "must be a fraction in [0, 1)")
        if self.val + self.test >= 0.9:
            raise MlkitError(f"--val {self.val} and --test {self.test} leave {1 - self.val - self.test:.0%} of the "
                             "images for training: keep their sum below 0.9")

    def to_json(self) -> dict:
        return {"kind": "folder", "val": self.val, "test": self.test, "seed": self.seed}

    @classmethod
    def from_record(cls, record: dict | None) -> FolderSplit:
        """The split a model was trained with (model.json's ``dataset.source``), else the defaults."""
        src = (record or {}).get("source") or {}
        if src.get("kind") != "folder":
            return cls()
        return cls(val=float(src.get("val", 0.1)), test=float(src.get("test", 0.1)), seed=int(src.get("seed", 0)))


def _image_suffixes() -> tuple[str, ...]:
    return IMAGE_SUFFIXES


def is_plain_folder(root: Path) -> bool:
    """A folder with no dataset.json that is not an unfinished mlkit build."""
    return root.is_dir() and not (root / DATASET_JSON).exists() and \
        not any((root / m).exists() for m in BUILD_MARKERS)


def is_catch_all(label: str) -> bool:
    """other, background, none, unknown, not_x, non_x, no_x: the class of everything else."""
    return bool(_CATCH_ALL.match(label))


def class_order(names: Sequence[str]) -> list[str]:
    """Sorted, a catch-all class (other, not_x ...) last."""
    return sorted(names, key=lambda n: (is_catch_all(n), n))


def _images_under(folder: Path) -> list[Path]:
    suffixes = _image_suffixes()
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if any(part.startswith(".") for part in rel):
            continue
        if p.suffix.lower() in suffixes and p.is_file():
            found.append(p)
    return sorted(found)


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    return {d.name: _images_under(d) for d in sorted(folder.iterdir())
            if d.is_dir() and not d.name.startswith(".")}


def scan(root: Path) -> tuple[str, dict[str, dict[str, list[Path]]]]:
    """(layout, class -> given split -> images); layout "flat" (DIR/<class>) or "split"
    (DIR/train/<class> ...), where the splits given are the folders present."""
    subdirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    given = {SPLIT_NAMES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_NAMES}
    nested = given and len(given) == len(subdirs) and all(any(c.is_dir() for c in d.iterdir()) for d in given.values())
    if nested:
        if "train" not in given:
            raise MlkitError(f"{root} has {', '.join(d.name + '/' for d in given.values())} but no train/: give a "
                             "folder with train/<class>/ (and optionally val/ and test/), or one folder per class")
        per_split = {s: _class_folders(d) for s, d in given.items()}
        classes = list(per_split["train"])
        strangers = sorted({c for s, found in per_split.items() for c in found} - set(classes))
        if strangers:
            raise MlkitError(f"{root}: class folder(s) {', '.join(strangers)} are in val/ or test/ but not in "
                             "train/: every class needs training images; add them to train/ or remove them")
        layout = "split"
        out = {c: {s: per_split[s].get(c, []) for s in per_split} for c in classes}
    else:
        layout = "flat"
        out = {c: {"all": files} for c, files in _class_folders(root).items()}
    return layout, out


def assign_splits(names: Sequence[str], cls: str, split: FolderSplit, carve: Sequence[str] = ("val", "test")
                  ) -> dict[str, list[int]]:
    """Indices of ``names`` (one class's relative paths) for train and each split in
    ``carve``: seeded hash order, then test first, val next, the rest train."""
    keys = [hashlib.sha256(f"{split.seed}\0{cls}\0{n}".encode()).hexdigest() for n in names]
    order = sorted(range(len(names)), key=lambda i: (keys[i], names[i]))
    n = len(order)
    out: dict[str, list[int]] = {}
    start = 0
    for s in ("test", "val"):
        if s not in carve:
            continue
        frac = getattr(split, s)
        k = int(round(n * frac))
        if frac > 0 and k == 0 and n >= 3:
            k = 1
        k = min(k, max(0, n - start - 1))   # keep at least one training image
        out[s] = sorted(order[start:start + k])
        start += k
    out["train"] = sorted(order[start:])
    return out


@dataclass
class FolderData:
    """A plain folder, split: what ``toolkit.training.data.read_dataset`` turns into a DatasetInfo."""

    root: Path
    name: str
    layout: str
    classes: list[str]
    files: dict[str, dict[str, list[Path]]]     # split -> class -> images
    content_hash: str
    split: FolderSplit

    def counts(self) -> dict[str, dict[str, int]]:
        return {c: {s: len(self.files[s][c]) for s in ("train", "val", "test")} for c in self.classes}

    def class_weights(self) -> dict[str, float]:
        """total / (classes x count) over the training images, as build-dataset's ``weights``."""
        counts = {c: len(self.files["train"][c]) for c in self.classes}
        total = sum(counts.values())
        return {c: round(total / (len(self.classes) * n), 6) if n else 1.0 for c, n in counts.items()}


def read_folder(root: Path | str, split: FolderSplit | None = None, *, check_decodes: bool = False,
                reporter: Reporter = SILENT) -> FolderData:
    """Scan, hash and split a plain folder; with ``check_decodes`` also decode every image
    (MlkitError naming each one that does not decode)."""
    root = Path(root)
    split = split or FolderSplit()
    split.check()
    layout, found = scan(root)
    if not found:
        raise MlkitError(f"{root} has no dataset.json and no class folders: give a dataset written by `mlkit "
                         "build-dataset`, or a folder with one subfolder of images per class (DIR/<class>/*.jpg, "
                         "or DIR/train/<class>/*.jpg)")
    empty = sorted(c for c, by in found.items() if not any(by.values()))
    if empty:
        raise MlkitError(f"{root}: class folder(s) {', '.join(empty)} hold no images (JPEG, PNG, BMP, GIF): add "
                         "images or remove the folder(s)")
    if len(found) < 2:
        raise MlkitError(f"{root} has one class folder ({', '.join(found)}): a classifier needs at least two, "
                         "one subfolder of images per class (e.g. hot_dog/ and not_hot_dog/)")
    no_train = sorted(c for c, by in found.items() if layout == "split" and not by.get("train"))
    if no_train:
        raise MlkitError(f"{root}/train: class folder(s) {', '.join(no_train)} hold no images: every class needs "
                         "training images")
    classes = class_order(list(found))
    all_paths = [p for c in classes for files in found[c].values() for p in files]
    content_hash, bad = _hash_and_check(root, all_paths, check_decodes, reporter)
    if bad:
        raise unreadable_error(bad)
    files: dict[str, dict[str, list[Path]]] = {"train": {}, "val": {}, "test": {}}
    for cls in classes:
        by = found[cls]
        if layout == "flat":
            pool, carve = by["all"], ("val", "test")
        else:
            pool = by["train"]
            carve = tuple(s for s in ("val", "test") if s not in by)
            for s in ("val", "test"):
                if s in by:
                    files[s][cls] = list(by[s])
        rel = [p.relative_to(root).as_posix() for p in pool]
        chosen = assign_splits(rel, cls, split, carve)
        for s, idx in chosen.items():
            files[s][cls] = [pool[i] for i in idx]
    return FolderData(root=root, name=folder_name(root), layout=layout, classes=classes, files=files,
                      content_hash=content_hash, split=split)


def folder_name(root: Path) -> str:
    """The dataset's name: the folder's, or its parent's when it is itself a split folder
    (``seefood/train`` -> ``seefood``), in snake_case."""
    root = root.resolve()
    name = root.parent.name if root.name.lower() in SPLIT_NAMES or root.name.lower() == "training" else root.name
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "dataset"


def _hash_and_check(root: Path, paths: Sequence[Path], check_decodes: bool,
                    reporter: Reporter = SILENT) -> tuple[str, list[str]]:
    """(content hash over sorted ``relative-path md5`` lines, the files that cannot be read or
    decoded). Reads each file once; decodes with TensorFlow, the decoder training uses."""
    if check_decodes:
        reporter.note(f"Checking that all {len(paths)} images of {root} decode ...")

    def one(p: Path) -> tuple[str, str | None]:
        try:
            data = p.read_bytes()
        except OSError as exc:
            return "", f"{p} ({exc.strerror or exc})"
        problem = None
        if not data:
            problem = f"{p} (empty file)"
        elif check_decodes:
            problem = _decode_problem(data, p)
        return hashlib.md5(data).hexdigest(), problem

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, paths))
    h = hashlib.sha256()
    for rel, (md5, _) in sorted(zip((p.relative_to(root).as_posix() for p in paths), results)):
        h.update(f"{rel} {md5}\n".encode())
    return h.hexdigest(), [problem for _, problem in results if problem]



def _decode_problem(data: bytes, path: Path) -> str | None:
    """Why TensorFlow's decoder (the one training uses) rejects ``data``, or None."""
    import tensorflow as tf

    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as exc:
        return f"{path} ({decoder_message(str(getattr(exc, 'message', exc)))})"
    return None
