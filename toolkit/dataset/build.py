"""``build_dataset``: a balanced, attributed image dataset from Open Images.

Open Images metadata -> class lookup and related classes -> selection and balancing ->
split -> verified concurrent download -> ``data/<name>/{train,val,test}/<class>/<ImageID>.jpg``
with ``manifest.csv``, ``ATTRIBUTION.md``, ``dataset.json`` and ``preview.png``.

Rerunning the same command resumes: images already in place are not fetched again, and
the result equals an uninterrupted run.

Generations: a folder that holds a finished dataset is never changed in place. A rebuild
(other settings with ``force``, or the same ones) makes the new generation beside it in
``DATA_DIR/.<name>.mlkit-next``, reusing (hard-linking) the old images that were made from
the same source with the same processing, and swaps the two folders in one step at the
end; a kill at any moment leaves the old complete dataset (and a resumable next one). A
lock on ``DATA_DIR/.<name>.lock`` keeps two builds of one folder from interleaving.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .download import DownloadJob, DownloadOptions, ImageSource, download_images, processing_fingerprint
from ..errors import MlkitError
from ..fsutil import (atomic_write_text, check_writable, describe_write_error, exchange, link_or_copy, locked,
                     recover_exchange)
from .manifest import (DATASET_FILES, SPLITS, ManifestRow, content_hash, read_manifest, write_attribution,
                       write_manifest)
from ..openimages import layout
from ..openimages.fetch import default_cache_dir, fetch, metadata_source
from ..openimages.labelindex import ids_to_hex
from ..openimages.metadata import OpenImagesMetadata, load_metadata
from ..openimages.ontology import OIClass, RelatedClass
from ..openimages.plan import MetadataPlan, metadata_files, metadata_plan
from ..openimages.tablecache import open_csv_table
from .preview import contact_sheet
from .selection import (BALANCE_MODES, Balance, assign_splits, balance_counts, class_folder_name,
                        negative_folder_name, sample, sample_excluding, split_ambiguous)

JOURNAL = ".downloads.jsonl"      # provenance of downloaded files, until manifest.csv has it
BUILD_SETTINGS = ".build.json"     # the settings of a build in progress (dataset.json's once done)
NEXT_SUFFIX = ".mlkit-next"        # DATA_DIR/.<name>.mlkit-next: the generation being built
LOCK_SUFFIX = ".lock"              # DATA_DIR/.<name>.lock: held while a build writes the dataset
SETTINGS_THAT_SHAPE_THE_DATASET = (
    "positive", "label_set", "splits", "negatives", "negative_classes", "verified_negatives",
    "include_related", "max_positives", "balance", "seed", "val", "test", "max_size", "crop",
    "crop_margin",
)
MULTICLASS_SETTINGS = (
    "classes", "other", "other_classes", "descendants", "label_set", "splits", "include_related",
    "max_per_class", "balance", "seed", "val", "test", "max_size", "crop", "crop_margin",
)
OTHER_FOLDER = "other"              # the class of --other: images of none of the chosen classes


@dataclass
class DatasetConfig:
    """Everything ``build_dataset`` needs; defaults are the CLI's defaults."""

    positive: str = ""                         # binary: display name (any case) or MID, e.g. "Hot dog"
    name: str | None = None                    # folder under data_dir; default: from the class(es)
    data_dir: Path = Path("data")
    source: str | None = None                  # metadata base URL or local folder (None: Open Images)
    image_source: str | None = None            # CVDF image base URL (None: the real CVDF mirror)
    cache_dir: Path | None = None              # None: the user's cache directory
    label_set: str = "all"                     # "all" (v7, ~20k classes) or "boxable" (600)
    splits: tuple[str, ...] = ("train", "validation", "test")  # Open Images splits to draw from
    negatives: int | None = None               # None: as many as positives
    negative_classes: tuple[str, ...] = ()     # hard negatives from these classes
    verified_negatives: bool = False           # only images where the positive was verified absent
    include_related: bool = False              # related classes count as positives
    max_positives: int | None = None
    balance: str = "weights"
    seed: int = 0
    val: float = 0.1
    test: float = 0.1
    workers: int = 32
    max_size: int | None = None                # longer side in pixels
    crop: bool = False                         # crop positives to their (largest) box
    crop_margin: float = 0.1                   # fraction of the box size added on each side
    dry_run: bool = False
    force: bool = False                        # rebuild a dataset made with other settings
    progress: bool = True
    # multi-class (--classes): one folder per class, instead of --positive's "X vs not X"
    classes: tuple[str, ...] = ()              # display names (any case) or MIDs, in dataset order
    descendants: bool = True                   # a class takes in its subcategories (Sandwich: Submarine sandwich)
    max_per_class: int | None = None
    other: int | None = None                   # None: no "other" class; N: N images of none of the classes
    other_classes: tuple[str, ...] = ()        # draw "other" only from these classes (hard negatives)

    @property
    def multiclass(self) -> bool:
        return bool(self.classes)

    def validate(self) -> None:
        self._validate_task()
        if self.label_set not in layout.LABEL_SETS:
            raise MlkitError(f"unknown label set {self.label_set!r}; choose {' or '.join(layout.LABEL_SETS)}")
        bad = [s for s in self.splits if s not in layout.SPLITS]
        if bad or not self.splits:
            raise MlkitError(f"unknown split(s) {', '.join(bad) or '(none)'}; --split takes a comma list "
                             f"of {', '.join(layout.SPLITS)}")
        if self.negatives is not None and self.negatives < 0:
            raise MlkitError(f"--negatives must be 0 or more, got {self.negatives}")
        if self.max_positives is not None and self.max_positives < 1:
            raise MlkitError(f"--max-positives must be at least 1, got {self.max_positives}")
        if self.balance not in BALANCE_MODES:
            raise MlkitError(f"unknown --balance {self.balance!r}; choose one of {', '.join(BALANCE_MODES)}")
        if self.name is not None and (not self.name.strip() or self.name in (".", "..") or "/" in self.name
                                      or "\\" in self.name or self.name.startswith(".")):
            raise MlkitError(f"--name {self.name!r} must be a plain folder name (no '/', '\\', '..' or "
                             "leading '.'): the dataset is always written inside --data-dir")
        if self.workers < 1:
            raise MlkitError(f"--workers must be at least 1, got {self.workers}")
        if self.max_size is not None and self.max_size < 16:
            raise MlkitError(f"--max-size must be at least 16 pixels, got {self.max_size}")
        if not 0 <= self.crop_margin <= 1:
            raise MlkitError(f"--crop-margin must be between 0 and 1, got {self.crop_margin}")
        assign_splits({}, self.val, self.test, self.seed)  # validates the fractions

    def _validate_task(self) -> None:
        """--positive (binary) or --classes (multi-class), and only the options of that one."""
        if self.classes and self.positive.strip():
            raise MlkitError("--classes and --positive cannot be combined: --positive builds one class vs not "
                             "(binary), --classes one folder per class; give one of them")
        if not self.classes:
            if not self.positive.strip():
                raise MlkitError("no class given: pass --positive CLASS (one class vs not, e.g. --positive "
                                 "\"Hot dog\") or --classes \"A, B\" (one folder per class)")
            given = [flag for flag, on in (("--other", self.other is not None),
                                           ("--other-classes", bool(self.other_classes)),
                                           ("--no-descendants", not self.descendants),
                                           ("--max-per-class", self.max_per_class is not None)) if on]
            if given:
                raise MlkitError(f"{_flags(given)} with --classes; with --positive use --negatives, "
                                 "--negative-classes and --max-positives")
            return
        given = [flag for flag, on in (("--negatives", self.negatives is not None),
                                       ("--negative-classes", bool(self.negative_classes)),
                                       ("--verified-negatives", self.verified_negatives),
                                       ("--max-positives", self.max_positives is not None)) if on]
        if given:
            raise MlkitError(f"{_flags(given)} with --positive; with --classes use --other N, "
                             "--other-classes and --max-per-class")
        if any(not c.strip() for c in self.classes):
            raise MlkitError(f"--classes has an empty name ({', '.join(self.classes)!r}): give a comma list of "
                             "Open Images display names or MIDs, e.g. --classes \"Hamburger, Pizza\"")
        if self.other is not None and self.other < 1:
            raise MlkitError(f"--other must be at least 1 (the number of 'other' images), got {self.other}")
        if self.other_classes and self.other is None:
            raise MlkitError("--other-classes chooses where the 'other' images come from: add --other N")
        if len(self.classes) < 2 and self.other is None:
            raise MlkitError(f"--classes names one class ({self.classes[0].strip()}): a classifier needs two or "
                             "more; add a class, or --other N to learn it against N images of anything else "
                             "(or use --positive for one class vs not)")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise MlkitError(f"--max-per-class must be at least 1, got {self.max_per_class}")

    def shaping_settings(self) -> dict:
        d = asdict(self)
        keys = MULTICLASS_SETTINGS if self.multiclass else SETTINGS_THAT_SHAPE_THE_DATASET
        out = {k: d[k] for k in keys}
        for k in ("splits", "negative_classes", "classes", "other_classes"):
            if k in out:
                out[k] = list(out[k])
        return out


def _flags(flags: list[str]) -> str:
    return f"{flags[0]} goes" if len(flags) == 1 else f"{', '.join(flags)} go"


@dataclass
class PlannedImage:
    image_id: str
    class_name: str
    split: str            # our split: train | val | test
    oi_subset: str        # the Open Images split it comes from
    record: dict          # its image-list row (URLs, attribution, rotation)
    crop: tuple[float, float, float, float] | None = None


@dataclass
class DatasetResult:
    path: Path
    name: str
    positive: OIClass | None                   # binary datasets (None for --classes)
    related: list[RelatedClass]
    classes: list[str]                         # folder names: positive first, or the classes in order, other last
    planned: dict[str, dict[str, int]]         # class -> split -> planned images
    counts: dict[str, dict[str, int]]          # class -> split -> images on disk
    balance: Balance
    class_weights: dict[str, float]
    failures: dict[str, int]                   # reason -> count (downloads that failed)
    duplicates: int
    downloaded: int
    skipped: int                               # already present, not fetched again
    content_hash: str
    dry_run: bool
    estimated_bytes: int
    elapsed: float
    notes: list[str] = field(default_factory=list)
    plan: list[dict] = field(default_factory=list)  # dry run: the images it would download
    download_seconds: float = 0.0              # the image downloads alone
    sources: dict[str, int] = field(default_factory=dict)  # source kind -> images on disk from it
    metadata_plan: MetadataPlan | None = None       # the metadata files, sizes, cache state
    task: str = "binary"                       # "binary" (--positive) or "multiclass" (--classes)
    class_info: list[dict] = field(default_factory=list)  # multi-class: per folder, its class and MIDs
    ambiguous: dict[str, int] = field(default_factory=dict)  # multi-class: "a+b" -> images left out

    @property
    def metadata_only(self) -> bool:
        """A dry run that stopped at the metadata plan: the metadata is not all cached yet,
        so no image could be selected without downloading it."""
        return self.dry_run and self.metadata_plan is not None and not self.metadata_plan.all_cached

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "name": self.name,
            "positive": {"mid": self.positive.mid, "name": self.positive.name} if self.positive else None,
            "related": [{"mid": r.cls.mid, "name": r.cls.name, "why": r.why} for r in self.related],
            "task": self.task, "classes": self.classes, "planned": self.planned, "counts": self.counts,
            **({"class_info": self.class_info, "ambiguous": self.ambiguous} if self.task == "multiclass" else {}),
            "balance": asdict(self.balance), "class_weights": self.class_weights,
            "failures": self.failures, "duplicates": self.duplicates,
            "downloaded": self.downloaded, "skipped": self.skipped,
            "content_hash": self.content_hash, "dry_run": self.dry_run,
            "estimated_bytes": self.estimated_bytes, "elapsed_seconds": round(self.elapsed, 2),
            "download_seconds": round(self.download_seconds, 2), "sources": self.sources,
            "notes": self.notes,
            **({"plan": self.plan} if self.dry_run else {}),
            "metadata_plan": self.metadata_plan.to_json() if self.metadata_plan else None,
            **({"metadata_only": True} if self.metadata_only else {}),
        }


Log = Callable[[str], None]


def build_dataset(config: DatasetConfig, log: Log | None = None) -> DatasetResult:
    """Select, download and lay out a dataset (or with ``dry_run``, only report the plan)."""
    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    config.validate()
    if not config.dry_run:  # before any download: a read-only folder would fail at the very end
        check_writable(config.data_dir, "--data-dir")
    check_writable(config.cache_dir if config.cache_dir is not None else default_cache_dir(), "--cache-dir")
    # one plan of the metadata before any download: each file, its size (HEAD), cached or not
    source = metadata_source(config.source, config.cache_dir)
    metadata = metadata_plan(source, config.label_set, config.splits, config.crop, strict=config.dry_run)
    meta = wanted = None
    if _class_files_cached(config, metadata):  # a wrong class name fails before anything is printed
        meta = load_metadata(config.source, config.cache_dir, config.label_set, config.progress)
        wanted = _resolve(config, meta)
    if metadata.all_cached:
        say(f"Metadata: all {len(metadata.files)} files cached ({metadata.total_bytes / 1e6:,.1f} MB), "
            "nothing to download.")
    else:
        for line in metadata.lines():
            say(line)
    if config.dry_run and not metadata.all_cached:
        return _metadata_only(config, source, metadata, t0, meta)
    if meta is None:
        meta = load_metadata(config.source, config.cache_dir, config.label_set, config.progress)
        wanted = _resolve(config, meta)
    sel = (_select_classes(config, meta, wanted, say) if config.multiclass
           else _select_binary(config, meta, wanted, say))
    name = config.name or sel.default_name
    root = Path(config.data_dir) / name
    notes = sel.notes
    subset_of = _subset_lookup(sel.drawn_from)

    # --- image records (URLs, attribution, rotation) and boxes ------------------------------
    chosen = {f: ids_to_hex(sel.chosen[f]) for f in sel.folders}
    records = _image_records(meta, config, {i: subset_of[i] for ids in chosen.values() for i in ids})
    missing = [i for ids in chosen.values() for i in ids if i not in records]
    if missing:
        notes.append(f"{len(missing)} selected images are missing from the image list and were skipped")
    chosen = {c: [i for i in ids if i in records] for c, ids in chosen.items()}
    for c, ids in chosen.items():
        if not ids:
            raise MlkitError(f"none of the selected {c} images is in the image list of the "
                             f"{', '.join(config.splits)} split(s), so the dataset would have no {c} images; "
                             "check that --source has the image lists of those splits, or use other --split")
    crops: dict[str, tuple[float, float, float, float]] = {}
    if config.crop:
        for folder, mids in sel.crop_mids.items():
            crops.update(_crops(meta, config, chosen[folder], mids, subset_of))
    split_of = assign_splits(chosen, config.val, config.test, config.seed)
    plan = [PlannedImage(i, c, split_of[i], subset_of[i], records[i], crops.get(i))
            for c in sel.folders for i in chosen[c]]
    planned = _count(plan)
    estimated = sum(_estimate_bytes(p.record, config.max_size) for p in plan)
    parts = [f"{len(chosen[f])} {f}" for f in sel.folders]
    say(f"Selected {', '.join(parts[:-1])} and {parts[-1]} images (balance: {config.balance}, seed {config.seed})."
        + (f" {len(sel.ambiguous)} images verified for two or more of the classes are left out as ambiguous."
           if sel.ambiguous else ""))

    images_base = config.image_source or layout.CVDF_IMAGES_BASE
    if config.dry_run:
        listing = [{"ImageID": p.image_id, "class": p.class_name, "split": p.split, "oi_subset": p.oi_subset,
                    "url": _sources(p, images_base)[0].url} for p in plan]
        return DatasetResult(root, name, sel.positive, sel.related, list(sel.folders), planned,
                             {c: {} for c in planned}, sel.balance, sel.balance.class_weights, {}, 0, 0, 0, "",
                             True, estimated, time.perf_counter() - t0, notes, listing, metadata_plan=metadata,
                             **sel.result_fields())

    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with locked(data_dir / f".{name}{LOCK_SUFFIX}", f"the dataset folder {root}"):
        return _build_locked(config, say, t0, meta, root, name, sel, plan, planned, estimated, images_base,
                             metadata)


@dataclass
class _Selection:
    """The images a build takes, per class folder in dataset order, and what to record of them."""

    folders: list[str]
    chosen: dict[str, np.ndarray]                  # folder -> ImageIDs (uint64, sorted)
    drawn_from: list[tuple[np.ndarray, dict[str, np.ndarray]]]  # (ids, Open Images split -> candidates)
    crop_mids: dict[str, list[str]]                # folder -> the MIDs whose boxes --crop cuts it to
    balance: Balance
    notes: list[str]
    title: str                                     # of preview.png
    default_name: str
    positive: OIClass | None = None                # binary: the positive class
    related: list[RelatedClass] = field(default_factory=list)
    class_info: list[dict] = field(default_factory=list)       # multi-class: per folder, for dataset.json
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ImageID -> the folders it shows
    ambiguous_subset: dict[str, str] = field(default_factory=dict)       # ImageID -> its Open Images split

    def result_fields(self) -> dict:
        return {"task": "multiclass" if self.class_info else "binary", "class_info": self.class_info,
                "ambiguous": _ambiguous_counts(self.ambiguous)}


def _ambiguous_counts(ambiguous: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """'a+b' (the folders an ambiguous image shows, in dataset order) -> images."""
    return dict(sorted(Counter("+".join(f) for f in ambiguous.values()).items()))


def _resolve(config: DatasetConfig, meta: OpenImagesMetadata) -> OIClass | list[OIClass]:
    """The positive class (binary), or the chosen classes in order, checked (multi-class)."""
    if not config.multiclass:
        return meta.classes.resolve(config.positive)
    chosen = [meta.classes.resolve(text, "--classes") for text in config.classes]
    first: dict[str, str] = {}
    for text, c in zip(config.classes, chosen):
        if c.mid in first:
            raise MlkitError(f"--classes names {c.name} ({c.mid}) twice (\"{first[c.mid].strip()}\" and "
                             f"\"{text.strip()}\"): give each class once")
        first[c.mid] = text
    if meta.hierarchy is not None and config.descendants:
        for a in chosen:
            below = set(meta.hierarchy.descendants(a.mid))
            for b in chosen:
                if b.mid in below:
                    path = " > ".join(meta.classes.name_of(m) for m in meta.hierarchy.path_to(b.mid)
                                      if m != meta.hierarchy.root)
                    raise MlkitError(
                        f"\"{a.name}\" is an ancestor of \"{b.name}\" in Open Images' class hierarchy ({path}): "
                        f"every {b.name} is also a {a.name}, so with descendants included the two classes "
                        f"cannot be told apart. Drop one of them, or pass --no-descendants so that \"{a.name}\" "
                        f"takes only images labelled {a.name} itself (an image verified for both is then left "
                        "out as ambiguous).")
    if config.include_related:
        for a in chosen:
            by_name = {r.cls.mid for r in meta.related(a) if r.why == "name"}
            for b in chosen:
                if b.mid in by_name:
                    raise MlkitError(f"with --include-related \"{a.name}\" takes in \"{b.name}\" (its name contains "
                                     f"{a.name}), so the two classes cannot be told apart; drop one, or leave out "
                                     "--include-related")
    return chosen


def _select_binary(config: DatasetConfig, meta: OpenImagesMetadata, positive: OIClass, say: Log) -> _Selection:
    """--positive: the positive class (and related ones with --include-related) vs images of
    none of them."""
    related = meta.related(positive)
    if related:
        say(f"Related classes of \"{positive.name}\" ({'taken as positives' if config.include_related else 'kept out of the negatives'}): "
            + ", ".join(f"{r.cls.name} ({r.why})" for r in related))
    neg_classes = [meta.classes.resolve(n) for n in config.negative_classes if n.strip()]
    clash = [c.name for c in neg_classes if c.mid == positive.mid or c.mid in {r.cls.mid for r in related}]
    if clash:
        raise MlkitError(f"--negative-classes includes {', '.join(clash)}, which is the positive class "
                         "or related to it; choose classes that do not show it")
    pos_folder = class_folder_name(positive.name)
    neg_folder = negative_folder_name(pos_folder)

    # --- selection, per Open Images split ------------------------------------------------
    positive_mids = [positive.mid] + ([r.cls.mid for r in related] if config.include_related else [])
    excluded_mids = [positive.mid] + [r.cls.mid for r in related]
    pos_by_split: dict[str, np.ndarray] = {}
    pool_by_split: dict[str, np.ndarray] = {}
    excl_by_split: dict[str, np.ndarray] = {}
    for split in config.splits:
        index = meta.label_index(split, config.progress)
        pos_by_split[split] = index.images_with(positive_mids, 1)
        excl_by_split[split] = index.images_with(excluded_mids, 1)
        if neg_classes:
            pool = index.images_with([c.mid for c in neg_classes], 1)
        else:
            pool = index.images
        if config.verified_negatives:
            pool = np.intersect1d(pool, index.images_with([positive.mid], 0), assume_unique=True)
        pool_by_split[split] = pool
    all_pos = _union(pos_by_split)
    if all_pos.size == 0:
        raise MlkitError(
            f"no image in the {', '.join(config.splits)} split(s) has a human-verified \"{positive.name}\" "
            f"label ({positive.mid}). " + _widen_hint(config, bool(related)))
    positives = sample(all_pos, config.max_positives, config.seed, "positives")
    n_neg = positives.size if config.negatives is None else config.negatives
    negatives = sample_excluding(_union(pool_by_split), _union(excl_by_split), n_neg, config.seed, "negatives")
    notes: list[str] = []
    if negatives.size < n_neg:
        notes.append(f"only {negatives.size} negative images match (asked for {n_neg})")
    balance = balance_counts({pos_folder: positives.size, neg_folder: negatives.size}, config.balance)
    if config.balance == "undersample":
        positives = sample(positives, balance.counts[pos_folder], config.seed, "undersample-pos")
        negatives = sample(negatives, balance.counts[neg_folder], config.seed, "undersample-neg")
    return _Selection(folders=[pos_folder, neg_folder], chosen={pos_folder: positives, neg_folder: negatives},
                      drawn_from=[(positives, pos_by_split), (negatives, pool_by_split)],
                      crop_mids={pos_folder: positive_mids}, balance=balance, notes=notes,
                      title=f"{{name}}: {positive.name} vs not", default_name=pos_folder, positive=positive,
                      related=related)


def _class_folders(classes: Sequence[OIClass], other: bool) -> list[str]:
    """One folder per class, snake_case of its display name; where two would be equal (two
    classes both called "Mouse", or a class called "Other" beside --other), the later one
    gets its MID appended (mouse_020lf)."""
    out: list[str] = []
    taken = {OTHER_FOLDER} if other else set()
    for c in classes:
        folder = class_folder_name(c.name)
        if folder in taken:
            folder = f"{folder}_{class_folder_name(c.mid.rsplit('/', 1)[-1])}"
        taken.add(folder)
        out.append(folder)
    return out


def _select_classes(config: DatasetConfig, meta: OpenImagesMetadata, classes: list[OIClass], say: Log) -> _Selection:
    """--classes: one folder per class, each taking the images a human verified to show it
    (Confidence 1) or, unless --no-descendants, any of its subcategories in the hierarchy.

    Open Images counts a subclass as its parent: "These subclasses in fact also belong to
    'Helmet'" (its challenge evaluation page, "Labels hierarchy handling",
    https://storage.googleapis.com/openimages/web/evaluation.html). So a Submarine sandwich
    is a Sandwich, and an image verified for two chosen classes (or their descendants)
    could be either: it is left out as ambiguous, and listed in manifest.csv. That holds
    with --no-descendants too, which only narrows what a class takes: a pizza beside a
    Submarine sandwich is not a clean "pizza" for "Sandwich, Pizza". A descendant that is
    itself a chosen class (Hamburger beside Sandwich, --no-descendants) belongs to it alone,
    and so does an image of it that also carries the ancestor's label: Open Images verifies
    ancestors of what an image shows (a hamburger is often verified "Sandwich" too), so on
    such an image "Sandwich" says nothing beyond "Hamburger". It shows a Sandwich other than
    a hamburger only through another label of the Sandwich family (Submarine sandwich), or
    when it shows no Hamburger at all."""
    folders = _class_folders(classes, config.other is not None)
    hierarchy = meta.hierarchy
    related = {c.mid: meta.related(c) for c in classes}
    def subtree(mid: str) -> list[str]:
        return [mid] + (hierarchy.descendants(mid) if hierarchy is not None else [])

    members: dict[str, list[str]] = {}   # the MIDs whose images a class takes
    family: dict[str, list[str]] = {}    # the MIDs that show it (for ambiguity): its subtree
    above: dict[str, list[str]] = {}     # family MIDs that are ancestors of a chosen class (implied by it)
    below: dict[str, list[str]] = {}     # the chosen classes in a class's subtree
    for c, folder in zip(classes, folders):
        inside = [(o, f) for o, f in zip(classes, folders) if o.mid != c.mid and o.mid in subtree(c.mid)]
        owned = {m for o, _ in inside for m in subtree(o.mid)}
        fam = [m for m in subtree(c.mid) if m not in owned]
        above[folder] = [m for m in fam if any(o.mid in subtree(m) for o, _ in inside)]
        below[folder] = [f for _, f in inside]
        mids = fam if config.descendants else [c.mid]
        if config.include_related:
            extra = [r.cls.mid for r in related[c.mid] if r.cls.mid not in fam]
            mids, fam = mids + extra, fam + extra
        members[folder], family[folder] = mids, fam
        shown = [r for r in related[c.mid] if r.cls.mid not in mids]
        taken = [meta.classes.name_of(m) for m in mids[1:]]
        if taken:
            say(f"\"{c.name}\" takes in {', '.join(taken)}.")
        if shown:
            say(f"Related classes of \"{c.name}\" (kept out of 'other'"
                f"{'' if config.include_related else '; --include-related takes them in'}): "
                + ", ".join(f"{r.cls.name} ({r.why})" for r in shown))
    excluded = sorted({c.mid for c in classes} | {r.cls.mid for rs in related.values() for r in rs}
                      | {m for mids in (*members.values(), *family.values()) for m in mids})
    other_classes = [meta.classes.resolve(n, "--other-classes") for n in config.other_classes if n.strip()]
    clash = [o.name for o in other_classes if o.mid in excluded]
    if clash:
        raise MlkitError(f"--other-classes includes {', '.join(clash)}, which is one of --classes or related to "
                         "one; 'other' must show none of them: choose other classes")

    by_split: dict[str, dict[str, np.ndarray]] = {f: {} for f in folders}   # images each class takes
    shown_by: dict[str, dict[str, np.ndarray]] = {f: {} for f in folders}   # images that show each class
    implied_by: dict[str, dict[str, np.ndarray]] = {f: {} for f in folders}  # ... by a label in above[f]
    pool_by_split: dict[str, np.ndarray] = {}
    excl_by_split: dict[str, np.ndarray] = {}
    for split in config.splits:
        index = meta.label_index(split, config.progress)
        groups = ([members[f] for f in folders] + [[m for m in family[f] if m not in above[f]] for f in folders]
                  + [above[f] for f in folders] + ([excluded] if config.other is not None else []))
        found = index.images_with_each(groups, 1)  # one pass over the split's labels
        n = len(folders)
        for k, folder in enumerate(folders):
            by_split[folder][split] = found[k]
            shown_by[folder][split] = found[n + k]
            implied_by[folder][split] = found[2 * n + k]
        if config.other is not None:
            excl_by_split[split] = found[-1]
            pool_by_split[split] = (index.images_with([o.mid for o in other_classes], 1) if other_classes
                                    else index.images)
    candidates = {f: _union(by_split[f]) for f in folders}
    empty = [c for c, f in zip(classes, folders) if candidates[f].size == 0]
    if empty:
        listing = ", ".join(f"\"{c.name}\" ({c.mid})" for c in empty)
        raise MlkitError(f"no image in the {', '.join(config.splits)} split(s) has a human-verified label of "
                         f"{listing}. " + _widen_hint(config, any(related[c.mid] for c in empty)))
    showing = {f: _union(shown_by[f]) for f in folders}
    for f in sorted(folders, key=lambda f: len(below[f])):   # a class's chosen descendants first
        shows_below = _union({g: showing[g] for g in below[f]})
        # its own (or an intermediate) label shows it where no chosen descendant explains the label
        showing[f] = np.union1d(showing[f], np.setdiff1d(_union(implied_by[f]), shows_below, assume_unique=True))
        candidates[f] = np.setdiff1d(candidates[f], shows_below, assume_unique=True)
    _, shows_two = split_ambiguous(showing)
    # ambiguous: an image some class would take that shows two or more of the classes
    ambiguous_ids = np.intersect1d(shows_two, _union({f: candidates[f] for f in folders}), assume_unique=True)
    unambiguous = {f: np.setdiff1d(candidates[f], ambiguous_ids, assume_unique=True) for f in folders}
    ambiguous: dict[str, tuple[str, ...]] = {}
    if ambiguous_ids.size:
        shows = {f: np.isin(ambiguous_ids, showing[f]) for f in folders}
        for k, image_id in enumerate(ids_to_hex(ambiguous_ids)):
            ambiguous[image_id] = tuple(f for f in folders if shows[f][k])
    ambiguous_subset = _subset_lookup([(ambiguous_ids, {s: _union({f: by_split[f][s] for f in folders})
                                                        for s in config.splits})])
    chosen: dict[str, np.ndarray] = {}
    for c, folder in zip(classes, folders):
        pool = unambiguous[folder]
        if pool.size == 0:
            raise MlkitError(f"every image of \"{c.name}\" in the {', '.join(config.splits)} split(s) is also verified "
                             f"for another of the classes ({candidates[folder].size} ambiguous), so none is left to "
                             "tell it apart by: choose other classes" + (", or pass --no-descendants"
                                                                        if config.descendants else ""))
        chosen[folder] = sample(pool, config.max_per_class, config.seed, f"class:{c.mid}")
    notes: list[str] = []
    drawn_from = [(chosen[f], by_split[f]) for f in folders]
    class_info = [{"folder": f, "name": c.name, "mid": c.mid,
                   "members": [{"mid": m, "name": meta.classes.name_of(m)} for m in members[f]],
                   "family": [{"mid": m, "name": meta.classes.name_of(m)} for m in family[f]],
                   "related": [{"mid": r.cls.mid, "name": r.cls.name, "why": r.why} for r in related[c.mid]]}
                  for c, f in zip(classes, folders)]
    if config.other is not None:
        other = sample_excluding(_union(pool_by_split), _union(excl_by_split), config.other, config.seed, "other")
        if other.size == 0:
            raise MlkitError(f"no image in the {', '.join(config.splits)} split(s) can be '{OTHER_FOLDER}': each "
                             "shows one of the classes or a related class"
                             + (" (or none is of --other-classes)" if other_classes else "")
                             + "; widen --split or --other-classes")
        if other.size < config.other:
            notes.append(f"only {other.size} '{OTHER_FOLDER}' images match (asked for {config.other})")
        chosen[OTHER_FOLDER] = other
        folders = folders + [OTHER_FOLDER]
        drawn_from.append((other, pool_by_split))
        class_info.append({"folder": OTHER_FOLDER, "name": OTHER_FOLDER, "mid": None,
                           "from_classes": [{"mid": o.mid, "name": o.name} for o in other_classes],
                           "excludes": excluded})
    balance = balance_counts({f: chosen[f].size for f in folders}, config.balance)
    if config.balance == "undersample":
        chosen = {f: sample(ids, balance.counts[f], config.seed, f"undersample:{f}") for f, ids in chosen.items()}
        drawn_from = [(chosen[f], by) for f, (_, by) in zip(folders, drawn_from)]
    title = " vs ".join([c.name for c in classes] + ([OTHER_FOLDER] if config.other is not None else []))
    return _Selection(folders=folders, chosen=chosen, drawn_from=drawn_from,
                      crop_mids={f: members[f] for f in folders if f in members}, balance=balance, notes=notes,
                      title=f"{{name}}: {title}", default_name="_".join(folders[:len(classes)]),
                      related=[r for c in classes for r in related[c.mid]], class_info=class_info,
                      ambiguous=ambiguous, ambiguous_subset=ambiguous_subset)


def _build_locked(config: DatasetConfig, say: Log, t0: float, meta: OpenImagesMetadata, root: Path, name: str,
                  sel: _Selection, plan: list[PlannedImage], planned: dict, estimated: int, images_base: str,
                  metadata: MetadataPlan) -> DatasetResult:
    """Everything that writes the dataset folder, under its lock."""
    balance, notes = sel.balance, sel.notes
    recover_exchange(root)
    state = _check_settings(root, config)
    options = DownloadOptions(workers=config.workers, max_size=config.max_size, progress=config.progress)
    jobs = [DownloadJob(key=p.image_id, dest=Path(p.split, p.class_name, f"{p.image_id}.jpg"),
                        sources=_sources(p, images_base), rotation=_rotation(p.record), crop=p.crop)
            for p in plan]
    wanted = {str(j.dest.as_posix()): (processing_fingerprint(j, options), {s.url for s in j.sources})
              for j in jobs}
    staging = root.with_name(f".{root.name}{NEXT_SUFFIX}")
    if state == "complete":
        old_rows = {r.path: r for r in _manifest_rows(root / "manifest.csv") if r.status == "ok"}
        _refuse_foreign(root, set(old_rows), top_level=True)
        work = staging
        if staging.exists() and _read_settings(staging / BUILD_SETTINGS) != config.shaping_settings():
            shutil.rmtree(staging)  # an interrupted rebuild with other settings, or a swapped-out old one
        say(f"Building the new dataset beside the old one ({work.name}); {root} stays as it is until it is "
            "complete.")
    else:
        old_rows = {}
        work = root
        if staging.exists():
            shutil.rmtree(staging)
    work.mkdir(parents=True, exist_ok=True)
    journal = work / JOURNAL
    records = _journal_records(journal)
    _refuse_foreign(work, set(records), top_level=False)
    atomic_write_text(work / BUILD_SETTINGS, json.dumps(config.shaping_settings(), indent=2) + "\n")
    _remove_stale(work, wanted, records)
    journal_lock = threading.Lock()

    def record(job: DownloadJob, source: ImageSource) -> None:
        # where each file came from and how it was made, written before the file is renamed
        # into place, so a kill at any moment loses no provenance
        rel = job.dest.relative_to(work).as_posix()
        with journal_lock, open(journal, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": job.key, "path": rel, "url": source.url, "kind": source.kind,
                                "fp": wanted[rel][0]}) + "\n")
            f.flush()

    if old_rows:
        _reuse_old_images(root, work, wanted, old_rows, records, journal)
    jobs = [DownloadJob(key=j.key, dest=work / j.dest, sources=j.sources, rotation=j.rotation, crop=j.crop)
            for j in jobs]

    # --- download --------------------------------------------------------------------------
    report = download_images(jobs, options, before_commit=record)

    # --- duplicates, records, summary -----------------------------------------------------
    previous = _journal_records(journal)
    rows: list[ManifestRow] = []
    first_with_md5: dict[str, str] = {}
    duplicates = 0
    for p, out in zip(plan, report.outcomes):
        status, reason = ("ok", "") if out.ok else ("failed", out.reason or "unknown")
        if out.ok and out.md5 in first_with_md5:
            status, reason = "duplicate", first_with_md5[out.md5]
            out.dest.unlink(missing_ok=True)
            duplicates += 1
        elif out.ok:
            first_with_md5[out.md5] = p.image_id
        row = _manifest_row(p, out, status, reason)
        rel = f"{p.split}/{p.class_name}/{p.image_id}.jpg"
        if out.skipped and rel in previous:  # fetched by an earlier (interrupted) run
            row.source_url, row.source_kind = previous[rel]["url"], previous[rel]["kind"]
        if status == "ok":
            row.processing = wanted[rel][0]
        rows.append(row)
    counts = _count([p for p, r in zip(plan, rows) if r.status == "ok"])
    empty = [c for c in sel.folders if not sum(counts.get(c, {}).values())]
    if empty:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.failures_by_reason().items(), key=lambda kv: -kv[1]))
        raise MlkitError(f"no {' and no '.join(empty)} image could be downloaded ({reasons or 'all were duplicates'}), "
                         "so there is nothing to train on"
                         + ("" if work == root else f"; {root} is left as it was")
                         + ". Check --image-source and your network, then run again (finished images are kept).")
    train_counts = {c: counts.get(c, {}).get("train", 0) for c in sel.folders}
    weights = (balance_counts(train_counts, "weights").class_weights
               if config.balance == "weights" and all(train_counts.values()) else balance.class_weights)
    digest = content_hash(rows)
    failures = report.failures_by_reason()
    sources = dict(Counter(r.source_kind for r in rows if r.status == "ok"))
    fallback = sum(n for k, n in sources.items() if k != "cvdf")
    if fallback:
        tried = sum(1 for o in report.outcomes if not o.skipped)
        gone = (f" The image source {images_base} gave none of the {tried} images fetched now: check "
                "--image-source." if tried and not any(r.source_kind == "cvdf" for r, o in zip(rows, report.outcomes)
                                                       if r.status == "ok" and not o.skipped) else "")
        notes.append(f"{fallback} of {sum(sources.values())} images came from Flickr "
                     f"({', '.join(f'{n} {k}' for k, n in sorted(sources.items()) if k != 'cvdf')}), not the CVDF "
                     f"mirror (manifest.csv's source_kind says which).{gone}")
    rows += [_ambiguous_row(image_id, shows, sel) for image_id, shows in sorted(sel.ambiguous.items())]
    result = DatasetResult(root, name, sel.positive, sel.related, list(sel.folders), planned, counts, balance,
                           weights, failures, duplicates,
                           sum(1 for o in report.outcomes if o.ok and not o.skipped),
                           sum(1 for o in report.outcomes if o.skipped), digest, False, estimated,
                           0.0, notes, download_seconds=report.elapsed, sources=sources, metadata_plan=metadata,
                           **sel.result_fields())
    _write_records(work, rows, name, sel, config, result, meta)
    if work != root:
        exchange(root, work)      # the one instant the dataset changes: old -> new, complete
        shutil.rmtree(work)       # the old generation (unrecognised leftovers are removed next run)
    (root / JOURNAL).unlink(missing_ok=True)
    (root / BUILD_SETTINGS).unlink(missing_ok=True)
    result.elapsed = time.perf_counter() - t0
    return result


def _ambiguous_row(image_id: str, shows: tuple[str, ...], sel: _Selection) -> ManifestRow:
    """The manifest row of an image left out because it is verified for two or more of the
    classes: in no split, its class the folders it shows joined by '+'."""
    names = {i["folder"]: i["name"] for i in sel.class_info}
    return ManifestRow(ImageID=image_id, class_name="+".join(shows), split="", status="ambiguous",
                       reason="verified for " + ", ".join(names.get(f, f) for f in shows), source_url="",
                       source_kind="", md5="", size="", width="", height="", license="", author="",
                       author_profile="", title="", landing_page="", original_url="",
                       oi_subset=sel.ambiguous_subset.get(image_id, ""))


def _write_records(work: Path, rows: list[ManifestRow], name: str, sel: _Selection, config: DatasetConfig,
                   result: DatasetResult, meta: OpenImagesMetadata) -> None:
    """manifest.csv, ATTRIBUTION.md, preview.png, dataset.json, each written atomically; a
    full disk is an MlkitError naming the file and the space it needed (a rerun resumes)."""
    path = work / "manifest.csv"
    try:
        write_manifest(path, rows)
        path = work / "ATTRIBUTION.md"
        write_attribution(path, rows, name)
        path = work / "preview.png"
        contact_sheet({(s, c): [work / r.path for r in rows if r.status == "ok" and r.split == s
                                and r.class_name == c]
                       for s in ("train", "val", "test") for c in sel.folders},
                      path, title=sel.title.replace("{name}", name))
        path = work / "dataset.json"
        _write_dataset_json(work, config, result, meta)
    except OSError as e:
        needed = 600 * len(rows) + 2_000_000  # ~0.6 KB a manifest/attribution row, ~2 MB of preview
        raise MlkitError(describe_write_error(e.filename or path, e, needed)
                         + " (the images downloaded so far are kept)") from e


# ------------------------------------------------------------------------------- helpers

def _class_files_cached(config: DatasetConfig, metadata: MetadataPlan) -> bool:
    """Whether the class names (and hierarchy, where the source has one) are on disk."""
    cached = {f.relpath for f in metadata.files if f.cached}
    listed = {f.relpath for f in metadata.files}
    small = [p for p, _, _ in metadata_files(config.label_set, config.splits, False)[:2] if p in listed]
    return all(p in cached for p in small)


def _metadata_only(config: DatasetConfig, source, metadata: MetadataPlan, t0: float,
                   meta: OpenImagesMetadata | None) -> DatasetResult:
    """A dry run before the metadata is cached: download nothing, report the plan. The
    positive class (or the classes) is checked when the class files are cached already."""
    positive, related, notes = None, [], []
    if meta is not None and config.multiclass:
        classes = _resolve(config, meta)
        related = [r for c in classes for r in meta.related(c)]
        folder = "_".join(_class_folders(classes, config.other is not None))
    elif meta is not None:
        positive = meta.classes.resolve(config.positive)
        related = meta.related(positive)
        folder = class_folder_name(positive.name)
    else:
        notes.append("the class names are not cached yet, so the class was not checked")
        folder = ("_".join(class_folder_name(c) for c in config.classes) if config.multiclass
                  else class_folder_name(config.positive))
    name = config.name or folder
    notes.append(f"dry run: nothing downloaded; a build would first download {metadata.download_bytes:,} bytes "
                 "of metadata (listed above), then select its images; once a build has cached it, a "
                 "dry run also lists the images")
    return DatasetResult(Path(config.data_dir) / name, name, positive, related, [], {}, {},
                         Balance(config.balance, {}, {}, {}, {}), {}, {}, 0, 0, 0, "", True, 0,
                         time.perf_counter() - t0, notes, [], metadata_plan=metadata)


def _widen_hint(config: DatasetConfig, has_related: bool) -> str:
    hints = []
    if len(config.splits) < len(layout.SPLITS):
        hints.append("more splits (--split train,validation,test)")
    if has_related and not config.include_related:
        hints.append("--include-related")
    if config.label_set == "boxable":
        hints.append("--label-set all")
    if not hints:
        return "Open Images has no verified images of it: choose another class (`mlkit classes WORD`)."
    return "Try " + ", or ".join(hints) + "."


def _union(by_split: dict[str, np.ndarray]) -> np.ndarray:
    arrays = [a for a in by_split.values() if a.size]
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.uint64)


def _subset_lookup(drawn_from: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, str]:
    """ImageID (hex) -> the Open Images split it was drawn from (the first that has it),
    given (chosen ids, Open Images split -> the candidates they were drawn from) pairs."""
    out: dict[str, str] = {}
    for chosen, by_split in drawn_from:
        for split, ids in by_split.items():
            hit = chosen[np.isin(chosen, ids)]
            for i in ids_to_hex(hit):
                out.setdefault(i, split)
    return out


def _image_records(meta: OpenImagesMetadata, config: DatasetConfig, subset_of: dict[str, str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for split in config.splits:
        ids = [i for i, s in subset_of.items() if s == split]
        if not ids:
            continue
        path = fetch(meta.source, layout.image_list_path(split, config.label_set), progress=config.progress)
        table = open_csv_table(path, meta.source.cache_dir, ["ImageID", "OriginalURL", "License", "Author"],
                               kind="image list")
        for row in table.rows_for(ids).to_pylist():
            out[row["ImageID"]] = row
    return out


def _crops(meta: OpenImagesMetadata, config: DatasetConfig, positives: Sequence[str], mids: Sequence[str],
           subset_of: dict[str, str]) -> dict[str, tuple[float, float, float, float]]:
    """The largest box of a positive class per image, widened by the margin, clamped to 0..1.

    Open Images gives boxes in the frame of the stored picture (its page "Rotated images in
    Open Images": Rotation says how far "the image and boxes" should be turned), so they go
    to the download as they are: it cuts the box before turning the image upright."""
    out: dict[str, tuple[float, float, float, float]] = {}
    m = config.crop_margin
    for split in config.splits:
        ids = [i for i in positives if subset_of.get(i) == split]
        if not ids:
            continue
        path = fetch(meta.source, layout.boxes_path(split), progress=config.progress)
        table = open_csv_table(path, meta.source.cache_dir, ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax"],
                               kind="boxes file")
        best: dict[str, tuple[float, tuple[float, float, float, float]]] = {}
        for row in table.rows_for(ids, ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax"]).to_pylist():
            if row["LabelName"] not in mids:
                continue
            try:
                x0, x1, y0, y1 = (float(row[k]) for k in ("XMin", "XMax", "YMin", "YMax"))
            except ValueError:
                continue
            area = (x1 - x0) * (y1 - y0)
            if area > 0 and area > best.get(row["ImageID"], (-1.0,))[0]:
                best[row["ImageID"]] = (area, (x0, y0, x1, y1))
        for image_id, (_, (x0, y0, x1, y1)) in best.items():
            dx, dy = (x1 - x0) * m, (y1 - y0) * m
            out[image_id] = (max(0.0, x0 - dx), max(0.0, y0 - dy), min(1.0, x1 + dx), min(1.0, y1 + dy))
    return out


def _sources(p: PlannedImage, images_base: str) -> tuple[ImageSource, ...]:
    """CVDF mirror first (boxable images; others answer 404 at once), then Flickr's
    300K thumbnail, then the Flickr original (whose MD5 Open Images records)."""
    rec = p.record
    out = [ImageSource(layout.cvdf_image_url(images_base, p.oi_subset, p.image_id), "cvdf")]
    if rec.get("Thumbnail300KURL"):
        out.append(ImageSource(rec["Thumbnail300KURL"], "thumbnail"))
    if rec.get("OriginalURL"):
        out.append(ImageSource(rec["OriginalURL"], "original", rec.get("OriginalMD5") or None))
    return tuple(out)


def _rotation(rec: dict) -> float | None:
    """Open Images' Rotation: degrees counter-clockwise; empty / NaN (unknown) or 0: None."""
    try:
        value = float(rec.get("Rotation") or 0)
    except ValueError:
        return None
    return value or None


def _estimate_bytes(rec: dict, max_size: int | None) -> int:
    """CVDF copies are at most 1024 px (~250 KB); smaller when --max-size asks for it."""
    try:
        original = int(float(rec.get("OriginalSize") or 0))
    except ValueError:
        original = 0
    cap = 250_000 if max_size is None else max(8_000, int(250_000 * min(1.0, (max_size / 1024) ** 2)))
    return min(original, cap) if original else cap


def _count(plan: Sequence[PlannedImage]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for p in plan:
        out.setdefault(p.class_name, Counter())[p.split] += 1
    return {c: {s: cnt.get(s, 0) for s in ("train", "val", "test")} for c, cnt in out.items()}


def _manifest_row(p: PlannedImage, out, status: str, reason: str) -> ManifestRow:
    rec = p.record
    ok = status == "ok"
    return ManifestRow(
        ImageID=p.image_id, class_name=p.class_name, split=p.split, status=status, reason=reason,
        source_url=(out.source_url or "") if ok else "", source_kind=(out.source_kind or "") if ok else "",
        md5=(out.md5 or "") if ok else "", size=out.size if ok else "", width=out.width if ok else "",
        height=out.height if ok else "", license=rec.get("License") or "", author=rec.get("Author") or "",
        author_profile=rec.get("AuthorProfileURL") or "", title=rec.get("Title") or "",
        landing_page=rec.get("OriginalLandingURL") or "", original_url=rec.get("OriginalURL") or "",
        oi_subset=p.oi_subset)


def _journal_records(journal: Path) -> dict[str, dict]:
    """Relative path -> {"url", "kind", "fp"} of each file a run in this folder put in
    place (the journal is written before each rename; a line cut short by a kill, or of
    an older format without a path, is skipped)."""
    out: dict[str, dict] = {}
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                out[entry["path"]] = {"url": entry["url"] or "", "kind": entry["kind"] or "", "fp": entry.get("fp")}
            except (ValueError, KeyError, TypeError):
                continue
    return out


def _manifest_rows(path: Path) -> list[ManifestRow]:
    try:
        return read_manifest(path)
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise MlkitError(f"{path} is unreadable ({exc}); mlkit cannot tell which files in {path.parent} are its "
                         "own: move the folder away, or choose another --name") from None


def _read_settings(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_settings(root: Path, config: DatasetConfig) -> str:
    """What ``root`` holds: "new" (nothing, or an empty folder), "resume" (an unfinished
    build with these settings) or "complete" (a finished dataset, rebuilt beside itself).
    Other settings need --force; a folder mlkit did not make is refused, always."""
    in_progress, finished = root / BUILD_SETTINGS, root / "dataset.json"
    if not root.exists():
        return "new"
    if not root.is_dir():
        raise MlkitError(f"{root} is a file, not a dataset folder; choose another --name or --data-dir")
    if not finished.is_file() and not in_progress.is_file():
        if any(root.iterdir()):
            raise MlkitError(f"{root} exists and is not an mlkit dataset (it has no dataset.json); mlkit never "
                             "writes into or deletes from a folder it did not make. Choose another --name or "
                             "--data-dir, or move that folder away.")
        return "new"
    if finished.is_file():
        info = _read_settings(finished)
        previous = (info or {}).get("settings", {})
    else:
        previous = _read_settings(in_progress) or {}
    current = config.shaping_settings()
    changed = sorted(k for k in current if previous.get(k) != current[k])
    if changed and not config.force:
        raise MlkitError(f"{root} was built with other settings ({', '.join(changed)}). Pass --force to "
                         "rebuild it (images that no longer belong are removed), or --name for a new dataset.")
    return "complete" if finished.is_file() else "resume"


_OWN_TOP_LEVEL = set(DATASET_FILES) | {BUILD_SETTINGS, JOURNAL}


def _refuse_foreign(root: Path, ours: set[str], *, top_level: bool) -> None:
    """Refuse to rebuild a dataset folder holding files mlkit did not write (a rebuild
    would drop them): every image must be one its manifest or journal lists."""
    foreign: list[str] = []
    for split in SPLITS:
        d = root / split
        if d.is_dir():
            foreign += [f.relative_to(root).as_posix() for f in d.rglob("*")
                        if f.is_file() and f.relative_to(root).as_posix() not in ours
                        and not (f.name.startswith(".") and ".part" in f.name)]
    if top_level and root.is_dir():
        foreign += [f.name for f in root.iterdir()
                    if f.name not in _OWN_TOP_LEVEL and not (f.is_dir() and f.name in SPLITS)
                    and not (f.name.startswith(".") and ".part" in f.name)]  # a killed atomic write
    if foreign:
        listing = ", ".join(sorted(foreign)[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise MlkitError(f"{root} holds {len(foreign)} file(s) that mlkit did not write ({listing}); mlkit only "
                         "replaces files its own manifest lists. Move them out of the dataset folder, then run again.")


def _remove_stale(work: Path, wanted: dict[str, tuple[str, set[str]]], records: dict[str, dict]) -> None:
    """Remove the files an earlier run in ``work`` wrote (its journal lists them) that this
    plan does not want as they are: not planned, made with other processing, or from a
    source this plan does not use. Nothing the journal does not list is touched."""
    for rel, rec in records.items():
        want = wanted.get(rel)
        if want is None or rec.get("fp") != want[0] or rec.get("url") not in want[1]:
            (work / rel).unlink(missing_ok=True)
    for split in SPLITS:
        d = work / split
        if d.is_dir():
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True):
                if not any(sub.iterdir()):
                    sub.rmdir()


def _reuse_old_images(root: Path, work: Path, wanted: dict[str, tuple[str, set[str]]],
                      old_rows: dict[str, ManifestRow], records: dict[str, dict], journal: Path) -> None:
    """Hard-link into the new generation the old images made from the same source with
    the same processing (the old manifest records both), and journal them."""
    lines, links = [], []
    for rel, (fp, urls) in wanted.items():
        row = old_rows.get(rel)
        if row is None or rel in records or row.processing != fp or row.source_url not in urls:
            continue
        src = root / rel
        try:
            if str(row.size) and src.stat().st_size != int(row.size):
                continue  # changed behind our back: fetch it again
        except (OSError, ValueError):
            continue
        links.append(rel)
        lines.append(json.dumps({"id": row.ImageID, "path": rel, "url": row.source_url, "kind": row.source_kind,
                                 "fp": fp}) + "\n")
    if lines:  # journalled first, so that a kill never leaves a file in `work` it does not list
        with open(journal, "a", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
    for rel in links:
        link_or_copy(root / rel, work / rel)


def _write_dataset_json(root: Path, config: DatasetConfig, result: DatasetResult, meta: OpenImagesMetadata) -> None:
    if result.task == "multiclass":
        info = _multiclass_json(config, result, meta)
    else:
        info = {
            "format": 1,
            "name": result.name,
            "toolkit_version": __version__,
            "positive": {"mid": result.positive.mid, "name": result.positive.name, "folder": result.classes[0]},
            "negative": {"folder": result.classes[1],
                         "classes": [{"mid": c.mid, "name": c.name} for c in
                                     (meta.classes.resolve(n) for n in config.negative_classes if n.strip())]},
            "related": [{"mid": r.cls.mid, "name": r.cls.name, "why": r.why} for r in result.related],
            "classes": result.classes,
            **_shared_json(config, result, meta),
        }
    atomic_write_text(root / "dataset.json", json.dumps(info, indent=2) + "\n")


def _shared_json(config: DatasetConfig, result: DatasetResult, meta: OpenImagesMetadata) -> dict:
    """The dataset.json keys every dataset has (the trainer reads counts, class_weights,
    balance.repeat and content_hash), in the order they are written."""
    return {
        "settings": config.shaping_settings(),
        "source": {"metadata": meta.source.describe(),
                   "images": config.image_source or layout.CVDF_IMAGES_BASE},
        "counts": result.counts,
        "planned": result.planned,
        "balance": {"mode": result.balance.mode, "repeat": result.balance.repeat,
                    "dropped": result.balance.dropped},
        "class_weights": result.class_weights,
        "failures": result.failures,
        "duplicates_removed": result.duplicates,
        "content_hash": result.content_hash,
        "layout": "{split}/{class}/{ImageID}.jpg",
    }


def _multiclass_json(config: DatasetConfig, result: DatasetResult, meta: OpenImagesMetadata) -> dict:
    """dataset.json of a --classes dataset: the keys a binary one has that the trainer reads
    (classes, counts, class_weights, balance.repeat, content_hash), without "positive", plus
    "task": "multiclass" and what each class folder holds."""
    other = next((i for i in result.class_info if i["folder"] == OTHER_FOLDER), None)
    return {
        "format": 1,
        "task": "multiclass",
        "name": result.name,
        "toolkit_version": __version__,
        "classes": result.classes,
        "class_info": result.class_info,
        "other": ({"folder": OTHER_FOLDER, "asked": config.other, "from_classes": other["from_classes"]}
                  if other else None),
        "descendants": config.descendants,
        "ambiguous": {"excluded": sum(result.ambiguous.values()), "by_classes": result.ambiguous},
        **_shared_json(config, result, meta),
    }
