"""Images to tensors: reading a dataset folder written by ``mlkit build-dataset`` and
turning its splits into tf.data pipelines.

Layout read: ``<dataset>/dataset.json`` and ``<dataset>/{train,val,test}/<class>/*.jpg``;
the classes and their order (positive first), class weights and oversampling repeats come
from ``dataset.json``.

Every image becomes the model's input the same way, here and in evaluate, predict and
export validation: decode (JPEG, PNG, BMP, GIF; first frame), RGB, then ``resize_mode``
(``squash``: the whole image; ``center_crop``: the largest centred square) scaled to
``image_size`` square with antialiased bilinear resampling, and rounded to whole pixel
values 0..255 (what an 8-bit image input gives a deployed model). The pipeline decodes
in parallel, caches decoded images as uint8 in memory, and prefetches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dataset.folder import FolderData, FolderSplit, is_plain_folder, read_folder
from ..dataset.manifest import DATASET_JSON, IMAGE_SUFFIXES, SPLITS
from ..dataset.unreadable import DATASET_ADVICE, decoder_message, unreadable_error
from ..errors import MlkitError
from ..progress import SILENT, Reporter
from .spec import ModelSpec

_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"BM", "BMP"), (b"GIF87a", "GIF"),
          (b"GIF89a", "GIF"))


@dataclass
class DatasetInfo:
    """What ``dataset.json`` says about a dataset folder."""

    path: Path
    name: str
    classes: list[str]                      # positive first
    counts: dict[str, dict[str, int]]       # class -> split -> images
    class_weights: dict[str, float]
    repeat: dict[str, int]                  # oversampling: times each training image is used
    content_hash: str
    positive: dict = field(default_factory=dict)
    # A plain folder (no dataset.json, ``toolkit.dataset.folder``): how it was split, and the split itself.
    source: dict = field(default_factory=dict)
    files: dict[str, dict[str, list[Path]]] | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "content_hash": self.content_hash,
                "classes": self.classes, "counts": self.counts, **({"source": self.source} if self.source else {})}


@dataclass
class SplitFiles:
    """The images of one split and their class indices (into ``DatasetInfo.classes``)."""

    split: str
    paths: list[Path]
    labels: np.ndarray   # int64

    def __len__(self) -> int:
        return len(self.paths)


def read_dataset(path: Path | str, folder: FolderSplit | None = None, *, check_decodes: bool = False,
                 reporter: Reporter = SILENT) -> DatasetInfo:
    """Read ``dataset.json`` of a dataset folder; MlkitError when it is missing or unusable.

    A folder without dataset.json that holds one subfolder of images per class (or
    train/val/test of those) is read as a plain folder (``toolkit.dataset.folder``), split with
    ``folder`` (default: 10 % val, 10 % test, seed 0); ``check_decodes`` then decodes every
    image first, naming the ones that fail (and says so through ``reporter``)."""
    root = Path(path)
    if not root.is_dir():
        raise MlkitError(f"no dataset folder at {root}: build one with `mlkit build-dataset --positive ...` "
                         "(it writes data/<name>/), or give a folder with one subfolder of images per class")
    meta_path = root / DATASET_JSON
    if not meta_path.is_file() and is_plain_folder(root):
        return _folder_dataset(read_folder(root, folder, check_decodes=check_decodes, reporter=reporter))
    if not meta_path.is_file():
        raise MlkitError(f"{root} has no {DATASET_JSON}: `mlkit build-dataset` writes it when a build finishes; "
                         "rerun that command (it resumes), or give the dataset folder itself (data/<name>)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
        classes = [str(c) for c in doc["classes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MlkitError(f"{meta_path} is not a dataset description written by mlkit build-dataset ({exc!r}); "
                         "rebuild the dataset") from None
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise MlkitError(f"{meta_path} lists {len(set(classes))} class(es) ({', '.join(classes) or 'none'}): a "
                         "classifier needs two, the positive and its negatives; rebuild the dataset")
    balance = doc.get("balance") or {}
    return DatasetInfo(
        path=root, name=str(doc.get("name") or root.name), classes=classes, counts=doc.get("counts") or {},
        class_weights={c: float((doc.get("class_weights") or {}).get(c, 1.0)) for c in classes},
        repeat={c: max(1, int((balance.get("repeat") or {}).get(c, 1))) for c in classes},
        content_hash=str(doc.get("content_hash") or ""), positive=doc.get("positive") or {})


def _folder_dataset(data: FolderData) -> DatasetInfo:
    return DatasetInfo(path=data.root, name=data.name, classes=data.classes, counts=data.counts(),
                       class_weights=data.class_weights(), repeat={c: 1 for c in data.classes},
                       content_hash=data.content_hash, source={**data.split.to_json(), "layout": data.layout},
                       files=data.files)


def split_files(info: DatasetInfo, split: str, *, require_all_classes: bool = True) -> SplitFiles:
    """The images of ``split``, sorted by class then file name; MlkitError when the split
    (or, with ``require_all_classes``, one of its classes) has no images."""
    if split not in SPLITS:
        raise MlkitError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    paths: list[Path] = []
    labels: list[int] = []
    empty: list[str] = []
    for index, cls in enumerate(info.classes):
        folder = info.path / split / cls
        if info.files is not None:   # a plain folder: the split decided by toolkit.dataset.folder
            files = list(info.files.get(split, {}).get(cls, []))
        else:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and
                           not p.name.startswith(".")) if folder.is_dir() else []
        if not files:
            empty.append(cls)
        paths.extend(files)
        labels.extend([index] * len(files))
    if not paths and info.files is not None:
        raise MlkitError(f"the {split} split of {info.path} is empty: give a larger --{split} fraction (the share "
                         f"of each class's images it takes), or add images")
    if not paths:
        raise MlkitError(f"the {split} split of {info.path} is empty (no images in {info.path / split}/<class>/): "
                         "rebuild the dataset with a larger --val / --test fraction or more images")
    if require_all_classes and empty:
        raise MlkitError(f"the {split} split of {info.path} has no images of class {', '.join(empty)}: a classifier "
                         "needs examples of every class; rebuild the dataset with more images")
    return SplitFiles(split, paths, np.asarray(labels, dtype=np.int64))


def model_split(dataset: dict, labels: Sequence[str], data_dir: Path | str | None, split: str,
                purpose: str) -> tuple[DatasetInfo, SplitFiles]:
    """(dataset, images of its ``split``) for running a model: ``data_dir``, or (None) the
    dataset the model was trained on (``dataset``: model.json's record of it), checked to
    have the model's ``labels`` in the same order. ``purpose`` names the command in the
    errors ("evaluate", "validate"). A plain folder is split as model.json records it, and
    must still have the content hash recorded there (else its held-out split moved)."""
    recorded_folder = data_dir is None
    if data_dir is None:
        recorded = dataset.get("path")
        if not recorded:
            raise MlkitError("model.json does not say which dataset the model was trained on; give --data DIR "
                             "(a dataset folder written by `mlkit build-dataset`)")
        data_dir = Path(recorded)
        if not data_dir.is_dir():
            raise MlkitError(f"the model's dataset {data_dir} is not here ({purpose} uses its {split} images); "
                             "give --data DIR with a dataset of the same classes")
    info = read_dataset(data_dir, FolderSplit.from_record(dataset))
    if recorded_folder and info.files is not None and dataset.get("content_hash") and \
            dataset["content_hash"] != info.content_hash:
        raise MlkitError(f"the images in {info.path} changed since the model was trained (content hash "
                         f"{info.content_hash[:12]}, then {str(dataset['content_hash'])[:12]}), so its {split} split "
                         f"is no longer the one held out then: retrain on the folder as it is, or give --data DIR")
    if info.classes != list(labels):
        raise MlkitError(f"the dataset {info.path} has classes {info.classes}, the model {list(labels)}: "
                         f"{purpose} on a dataset with the same classes in the same order")
    return info, split_files(info, split, require_all_classes=False)


def oversample(files: SplitFiles, info: DatasetInfo) -> SplitFiles:
    """Repeat each training image of a class ``repeat`` times (``--balance oversample``)."""
    reps = np.array([info.repeat.get(c, 1) for c in info.classes])[files.labels]
    if (reps == 1).all():
        return files
    idx = np.repeat(np.arange(len(files)), reps)
    return SplitFiles(files.split, [files.paths[i] for i in idx], files.labels[idx])


def class_weight_dict(info: DatasetInfo) -> dict[int, float] | None:
    """Keras' ``class_weight`` from ``dataset.json``; None when all weights are 1."""
    weights = {i: info.class_weights.get(c, 1.0) for i, c in enumerate(info.classes)}
    return None if all(abs(w - 1.0) < 1e-9 for w in weights.values()) else weights


def check_image_files(paths: Sequence[Path], advice: str = DATASET_ADVICE) -> None:
    """Fail fast, naming the files, on anything that is not an image file (an empty
    file, HTML saved as .jpg ...). Reads only the first bytes of each file. ``advice``:
    what the message tells the user to do (by default: a dataset's images)."""
    bad: list[str] = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            bad.append(f"{p} ({exc.strerror or exc})")
            continue
        if not head:
            bad.append(f"{p} (empty file)")
        elif not any(head.startswith(m) for m, _ in _MAGIC):
            bad.append(f"{p} (not a JPEG, PNG, BMP or GIF file)")
    if bad:
        raise unreadable_error(bad, advice)


def find_undecodable(paths: Sequence[Path]) -> list[str]:
    """The files TensorFlow's decoder rejects (a truncated JPEG ...), decoded one by one."""
    import tensorflow as tf

    bad = []
    for p in paths:
        try:
            tf.io.decode_image(tf.io.read_file(str(p)), channels=3, expand_animations=False)
        except (tf.errors.OpError, ValueError) as exc:
            bad.append(f"{p} ({decoder_message(str(getattr(exc, 'message', exc)))})")
    return bad


@contextmanager
def decode_errors_named(paths: Sequence[Path], advice: str = DATASET_ADVICE) -> Iterator[None]:
    """Turn a decoding failure deep in a tf.data pipeline into an MlkitError that names the
    file(s), found by decoding each image again (only on failure: no cost otherwise)."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError:
        bad = find_undecodable(paths)
        if bad:
            raise unreadable_error(bad, advice) from None
        raise


# ----------------------------------------------------------------------------- tensors

def decode_and_resize(data, spec: ModelSpec):
    """Encoded image bytes (a scalar string tensor) -> uint8 (size, size, 3), as in the module doc."""
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if spec.resize_mode == "center_crop":
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        side = tf.minimum(h, w)
        image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    size = spec.image_size
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def image_dataset(paths: Sequence[Path], spec: ModelSpec, *, labels: np.ndarray | None = None,
                  batch_size: int = 32, shuffle: bool = False, seed: int = 0, cache: bool = True,
                  augment=None, epochs: tuple[int, int] | None = None):
    """A batched tf.data pipeline of float32 images (0..255) [and int labels].

    Parallel decode + resize, an in-memory cache of the decoded uint8 images (each epoch
    after the first reads no file), optional reshuffling each epoch, optional augmentation
    (a Keras layer applied per batch, after the cache), prefetch. With ``shuffle`` and
    ``epochs=(first, end)`` it holds the batches of those epochs, each epoch's order fixed
    by ``seed`` and its number (``toolkit.training.epochs``: a resumed run sees the same batches)."""
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    strings = [str(p) for p in paths]
    if labels is None:
        ds = tf.data.Dataset.from_tensor_slices(strings)
        ds = ds.map(lambda p: decode_and_resize(tf.io.read_file(p), spec), num_parallel_calls=autotune,
                    deterministic=True)
    else:
        ds = tf.data.Dataset.from_tensor_slices((strings, np.asarray(labels, dtype=np.int64)))
        ds = ds.map(lambda p, y: (decode_and_resize(tf.io.read_file(p), spec), y), num_parallel_calls=autotune,
                    deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle and epochs is not None:   # epochs (first, end): each epoch's order fixed by its number
        from .epochs import epoch_batches

        ds = epoch_batches(ds, len(strings), batch_size, seed, *epochs)
    else:
        if shuffle:
            ds = ds.shuffle(max(1, len(strings)), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)

    def to_float(x):
        return tf.cast(x, tf.float32)

    if labels is None:
        ds = ds.map(to_float, num_parallel_calls=autotune, deterministic=True)
    elif augment is None:
        ds = ds.map(lambda x, y: (to_float(x), y), num_parallel_calls=autotune, deterministic=True)
    else:
        ds = ds.map(lambda x, y: (augment(to_float(x), training=True), y), num_parallel_calls=autotune,
                    deterministic=True)
    return ds.prefetch(autotune)


def augmentation(seed: int = 0):
    """Training-only augmentation: horizontal flip, rotation up to +-10% of a turn (36
    degrees), zoom up to +-10%, contrast +-10%. Works on 0..255 pixels. Never saved with
    the model."""
    import keras

    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.1, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomContrast(0.1, value_range=(0, 255), seed=seed + 3),
    ], name="augmentation")


def load_images(paths: Sequence[Path | str], spec: ModelSpec, batch_size: int = 32,
                advice: str = DATASET_ADVICE) -> np.ndarray:
    """Images as the model's input: float32 (n, size, size, 3), whole values 0..255.
    MlkitError naming any file that is missing or cannot be decoded (``advice``: what it
    tells the user to do)."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MlkitError(f"no such image file: {', '.join(missing[:10])}")
    check_image_files(paths, advice)
    ds = image_dataset(paths, spec, batch_size=batch_size, cache=False)
    with decode_errors_named(paths, advice):
        batches = [b.numpy() for b in ds]
    return np.concatenate(batches) if batches else np.zeros((0, *spec.input_shape), np.float32)
