"""``review``: the training images whose label the model most disagrees with, and
``--exclude``: leaving such images out of training.

How the images are ranked: the frozen backbone's pooled features of every train and val
image (the features ``train``'s fast path computes, same model, same preprocessing) feed
a logistic regression in stratified k-fold cross-validation, so each image gets class
probabilities from a model that never saw it (out-of-fold). The regularisation strength
is chosen inside each training fold (``LogisticRegressionCV``, log loss). cleanlab's
``find_label_issues`` (confident learning: Northcutt, Jiang & Chuang 2021, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 70) then flags the likely label
errors (``filter_by="prune_by_noise_rate"``) and ranks them by self-confidence: the
out-of-fold probability of the given label, lowest first.

Outputs, in ``<output>/``: ``review.csv`` (rank, file relative to the dataset, image id,
split, given label, predicted label, confidence of the prediction, probability of the
given label) and ``review.png`` (a contact sheet of the ranked images). Neither changes
the dataset: pass the CSV (edited or not) to ``mlkit train --exclude``. ``--top N`` keeps
the first N flagged images, or, when cleanlab flags fewer, continues down cleanlab's
label-quality ranking (``get_label_quality_scores``; column ``flagged`` says which is which).

Exclusion files: ``review.csv`` (its ``file`` column), or a plain list, one entry per line
(``#`` comments and blank lines ignored): an ImageID, a file name, or a path relative to
the dataset folder. ``train`` leaves the matching images out of its train and val splits;
the test split is never filtered, so reported accuracy stays comparable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import DatasetInfo, SplitFiles, check_image_files, decode_errors_named, read_dataset, split_files
from ..dataset.exclusions import image_id_of, read_exclusions
from ..errors import MlkitError, ParameterError
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..progress import SILENT, Reporter
from .spec import ModelSpec

REVIEW_CSV = "review.csv"
REVIEW_PNG = "review.png"
CSV_COLUMNS = ("rank", "file", "image_id", "split", "given_label", "predicted_label", "confidence",
               "given_label_probability", "flagged")
REVIEWED_SPLITS = ("train", "val")
SHEET_MAX = 48
# Regularisation strengths LogisticRegressionCV chooses from (inside each training fold).
_CS = (0.001, 0.01, 0.1, 1.0, 10.0)

@dataclass
class ReviewConfig:
    """dataset_dir: a folder written by ``mlkit build-dataset``. output_dir: where review.csv
    and review.png go (default ``reviews/<dataset name>``). folds: cross-validation folds,
    >= 2. top: keep at most this many flagged images (None: all that cleanlab flags).
    seed: fold assignment. alpha, image_size, weights, resize_mode, batch_size: the
    backbone that computes the features, as for ``train``."""

    dataset_dir: Path
    output_dir: Path | None = None
    folds: int = 5
    top: int | None = None
    seed: int = 0
    alpha: float = 1.0
    image_size: int = 224
    weights: str = "imagenet"
    resize_mode: str = "squash"
    batch_size: int = 32

    def validate(self) -> None:
        if self.folds < 2:
            raise ParameterError("folds", self.folds, "must be at least 2")
        if self.top is not None and self.top < 1:
            raise ParameterError("top", self.top, "must be at least 1")
        if self.batch_size < 1:
            raise ParameterError("batch_size", self.batch_size, "must be at least 1")


@dataclass
class ReviewRow:
    rank: int
    file: str            # relative to the dataset folder
    image_id: str        # the Open Images ImageID where the file name is one, else ""
    split: str
    given_label: str
    predicted_label: str
    confidence: float    # out-of-fold probability of the predicted label
    given_label_probability: float
    flagged: bool        # flagged by find_label_issues (else only low in cleanlab's label-quality ranking)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in CSV_COLUMNS}


@dataclass
class ReviewResult:
    path: Path
    dataset: str
    images: int
    flagged: int                       # how many cleanlab flagged
    rows: list[ReviewRow]              # ranked, at most --top
    folds: int
    out_of_fold_accuracy: float
    timings: dict[str, float]
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"path": str(self.path), "dataset": self.dataset, "images": self.images, "flagged": self.flagged,
                "folds": self.folds, "out_of_fold_accuracy": round(self.out_of_fold_accuracy, 6),
                "rows": [r.to_json() for r in self.rows], "timings": self.timings, "files": self.files}


# ------------------------------------------------------------------------------ review

def review(config: ReviewConfig, reporter: Reporter = SILENT) -> ReviewResult:
    """Rank the likely label errors of a dataset's train and val images; see the module doc.
    ``reporter`` is told what is being done."""
    t_start = time.perf_counter()
    config.validate()
    info = read_dataset(config.dataset_dir)
    files = [split_files(info, s, require_all_classes=False) for s in REVIEWED_SPLITS if _has_images(info, s)]
    if not files:
        raise MlkitError(f"{info.path} has no train or val images to review; rebuild the dataset")
    paths = [p for f in files for p in f.paths]
    labels = np.concatenate([f.labels for f in files])
    split_of = [f.split for f in files for _ in f.paths]
    counts = np.bincount(labels, minlength=len(info.classes))
    if (counts < config.folds).any():
        few = ", ".join(f"{c} ({n})" for c, n in zip(info.classes, counts) if n < config.folds)
        raise MlkitError(f"review needs at least --folds ({config.folds}) train/val images of every class; "
                         f"{few} has fewer: use a smaller --folds or add images")
    check_image_files(paths)
    spec = ModelSpec(labels=info.classes, alpha=config.alpha, image_size=config.image_size,
                     resize_mode=config.resize_mode)
    reporter.note(f"Computing backbone features of {len(paths)} train/val images ...")
    t0 = time.perf_counter()
    feats = image_features(paths, spec, config.weights, config.batch_size)
    timings = {"features_seconds": round(time.perf_counter() - t0, 3)}
    t0 = time.perf_counter()
    probs = out_of_fold_probabilities(feats, labels, config.folds, config.seed)
    ranked = rank_label_issues(labels, probs)
    timings["ranking_seconds"] = round(time.perf_counter() - t0, 3)
    flagged = set(ranked)
    if config.top is None:
        shown = ranked
    else:   # --top N beyond the flagged ones: continue down cleanlab's label-quality ranking
        shown = (ranked + [i for i in quality_order(labels, probs) if i not in flagged])[:config.top]
    pred = probs.argmax(axis=1)
    rows = [ReviewRow(rank=k + 1, file=_relative(paths[i], info.path), image_id=image_id_of(paths[i].name),
                      split=split_of[i], given_label=info.classes[labels[i]], predicted_label=info.classes[pred[i]],
                      confidence=round(float(probs[i, pred[i]]), 6),
                      given_label_probability=round(float(probs[i, labels[i]]), 6), flagged=i in flagged)
            for k, i in enumerate(shown)]
    out = Path(config.output_dir) if config.output_dir is not None else Path("reviews") / info.name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REVIEW_CSV, review_csv(rows))
    atomic_write_bytes(out / REVIEW_PNG, contact_sheet(
        [info.path / r.file for r in rows[:SHEET_MAX]], rows[:SHEET_MAX],
        title=f"{info.name}: {len(ranked)} of {len(paths)} train/val images flagged by cleanlab "
              f"({config.folds}-fold out-of-fold predictions)", more=max(0, len(rows) - SHEET_MAX)))
    timings["total_seconds"] = round(time.perf_counter() - t_start, 3)
    return ReviewResult(out, info.name, len(paths), len(ranked), rows, config.folds,
                        float((pred == labels).mean()), timings, [REVIEW_CSV, REVIEW_PNG])


def _has_images(info: DatasetInfo, split: str) -> bool:
    try:
        split_files(info, split, require_all_classes=False)
    except MlkitError:
        return False
    return True


def image_features(paths: Sequence[Path], spec: ModelSpec, weights: str = "imagenet",
                   batch_size: int = 32) -> np.ndarray:
    """The frozen backbone's pooled features of ``paths`` (train's fast-path features)."""
    from .data import image_dataset
    from .model import build_classifier, feature_extractor, predict_batches

    model = build_classifier(spec, weights)
    with decode_errors_named(paths):
        return predict_batches(feature_extractor(model), image_dataset(paths, spec, batch_size=batch_size,
                                                                       cache=False))


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = 5,
                              seed: int = 0) -> np.ndarray:
    """Class probabilities of every row from a logistic regression that did not see it
    (stratified k-fold; standardised features; C chosen inside each training fold)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_classes = int(labels.max()) + 1
    probs = np.zeros((len(labels), n_classes), np.float64)
    outer = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, held_idx in outer.split(features, labels):
        inner = min(3, int(np.bincount(labels[fit_idx]).min()))
        clf = make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=list(_CS), cv=StratifiedKFold(n_splits=max(2, inner), shuffle=True, random_state=seed),
            scoring="neg_log_loss", max_iter=2000))
        with warnings.catch_warnings():   # scikit-learn 1.9's notices of future defaults; results unaffected
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            clf.fit(features[fit_idx], labels[fit_idx])
        probs[np.ix_(held_idx, clf.classes_)] = clf.predict_proba(features[held_idx])
    return probs


def rank_label_issues(labels: np.ndarray, probs: np.ndarray) -> list[int]:
    """Indices cleanlab flags as likely label errors, most likely first."""
    from cleanlab.filter import find_label_issues

    return [int(i) for i in find_label_issues(labels, probs, filter_by="prune_by_noise_rate",
                                              return_indices_ranked_by="self_confidence")]


def quality_order(labels: np.ndarray, probs: np.ndarray) -> list[int]:
    """Every index, lowest cleanlab label-quality score (self-confidence) first."""
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, probs, method="self_confidence")
    return [int(i) for i in np.argsort(scores, kind="stable")]


def review_csv(rows: Sequence[ReviewRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([getattr(r, c) for c in CSV_COLUMNS])
    return buf.getvalue()


def contact_sheet(paths: Sequence[Path], rows: Sequence[ReviewRow], title: str = "", more: int = 0) -> bytes:
    """Thumbnails of the ranked images with rank, given and predicted label, confidence."""
    from PIL import Image

    from .plots import _figure, _png

    n = len(paths)
    cols = min(6, max(1, n))
    nrows = max(1, -(-n // cols))
    fig = _figure(2.4 * cols, 2.8 * nrows + 0.4)
    if n == 0:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no likely label errors found", ha="center", va="center", fontsize=12)
    for k, (p, r) in enumerate(zip(paths, rows)):
        ax = fig.add_subplot(nrows, cols, k + 1)
        ax.axis("off")
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((256, 256))
            ax.imshow(np.asarray(im))
        ax.set_title(f"#{r.rank}{'' if r.flagged else ' (not flagged)'} {Path(r.file).name[:22]}\n"
                     f"given {r.given_label}\n"
                     f"predicted {r.predicted_label} ({r.confidence:.2f})", fontsize=7)
    fig.suptitle((title or "review") + (f" ({more} more in review.csv)" if more else ""), fontsize=9)
    return _png(fig)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------ --exclude

@dataclass
class Exclusion:
    """What an exclusion file took out of a dataset's train and val splits."""

    file: Path
    entries: int
    excluded: list[str]       # files relative to the dataset folder, sorted
    unmatched: list[str]      # entries that matched no train/val image

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.excluded).encode()).hexdigest()[:16]

    @property
    def note(self) -> str:
        text = f"--exclude {self.file}: {len(self.excluded)} train/val image(s) left out"
        if self.unmatched:
            text += f"; {len(self.unmatched)} entr{'y' if len(self.unmatched) == 1 else 'ies'} matched none " \
                    f"(e.g. {self.unmatched[0]})"
        return text

    def to_json(self) -> dict:
        return {"file": str(self.file), "entries": self.entries, "excluded": len(self.excluded),
                "sha256": self.digest}


def exclude_from_splits(path: Path | str, info: DatasetInfo, *splits: SplitFiles):
    """(each of ``splits`` without the listed images ..., Exclusion). An entry matches an
    image by its path relative to the dataset, its file name, or its stem (the ImageID).
    MlkitError when the file is unusable, when nothing in it matches (another dataset?)
    or when a class would have no training images left."""
    entries = read_exclusions(path)
    wanted = {e.replace("\\", "/").lower() for e in entries}
    out, excluded, used = [], [], set()
    for files in splits:
        keep = []
        for i, p in enumerate(files.paths):
            keys = {_relative(p, info.path).lower(), p.name.lower(), p.stem.lower()}
            hit = keys & wanted
            if hit:
                used |= hit
                excluded.append(_relative(p, info.path))
            else:
                keep.append(i)
        out.append(SplitFiles(files.split, [files.paths[i] for i in keep], files.labels[keep]))
    unmatched = sorted(e for e in wanted if e not in used)
    if entries and not excluded:
        raise MlkitError(f"--exclude {path}: none of its {len(entries)} entries names an image of the train or val "
                         f"split of {info.path} (e.g. {entries[0]!r}); was it written for another dataset?")
    for files in out:
        if not len(files):
            raise MlkitError(f"--exclude {path} leaves the {files.split} split empty: remove some entries from it")
        if files.split == "train":
            left = np.bincount(files.labels, minlength=len(info.classes)).tolist()
            empty = [c for c, n in zip(info.classes, left) if n == 0]
            if empty:
                raise MlkitError(f"--exclude {path} leaves no training image of class {', '.join(empty)}: "
                                 "remove some entries from it")
    return (*out, Exclusion(Path(path), len(entries), sorted(excluded), unmatched))
