"""``DatasetConfig``: what a build is asked for, checked before anything is read or written.

One dataset is either binary (``--positive``: one class vs images of none of it) or
multi-class (``--classes``: one folder per class, and with ``--other`` a folder of images of
none of them); each kind has its own options, and ``validate`` refuses the other kind's.
``shaping_settings`` are the settings that decide which images the dataset holds: a rebuild
with other ones needs ``--force``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import MlkitError, ParameterError
from ..openimages import layout
from .exclusions import read_image_exclusion
from .selection import BALANCE_MODES, assign_splits

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
    # multi-class (--classes): one folder per class, instead of --positive's "X vs not X"
    classes: tuple[str, ...] = ()              # display names (any case) or MIDs, in dataset order
    descendants: bool = True                   # a class takes in its subcategories (Sandwich: Submarine sandwich)
    max_per_class: int | None = None
    other: int | None = None                   # None: no "other" class; N: N images of none of the classes
    other_classes: tuple[str, ...] = ()        # draw "other" only from these classes (hard negatives)
    exclude: Path | None = None                # a file of ImageIDs to leave out (review.csv, or one per line)

    @property
    def multiclass(self) -> bool:
        return bool(self.classes)

    def validate(self) -> None:
        self._validate_task()
        self._validate_source()
        if self.negatives is not None and self.negatives < 0:
            raise ParameterError("negatives", self.negatives, "must be 0 or more")
        if self.max_positives is not None and self.max_positives < 1:
            raise ParameterError("max_positives", self.max_positives, "must be at least 1")
        if self.balance not in BALANCE_MODES:
            raise ParameterError("balance", self.balance, f"must be one of {', '.join(BALANCE_MODES)}")
        if self.name is not None and (not self.name.strip() or self.name in (".", "..") or "/" in self.name
                                      or "\\" in self.name or self.name.startswith(".")):
            raise ParameterError("name", self.name, "must be a plain folder name (no '/', '\\', '..' or "
                                 "leading '.'): the dataset is always written inside --data-dir")
        if self.workers < 1:
            raise ParameterError("workers", self.workers, "must be at least 1")
        if self.exclude is not None:
            read_image_exclusion(self.exclude)   # a missing or unusable list fails before any download
        if self.max_size is not None and self.max_size < 16:
            raise ParameterError("max_size", self.max_size, "must be at least 16 pixels")
        if not 0 <= self.crop_margin <= 1:
            raise ParameterError("crop_margin", self.crop_margin, "must be between 0 and 1")
        assign_splits({}, self.val, self.test, self.seed)  # validates the fractions

    def _validate_source(self) -> None:
        """The label set and the Open Images splits to draw from."""
        if self.label_set not in layout.LABEL_SETS:
            raise ParameterError("label_set", self.label_set, f"must be {' or '.join(layout.LABEL_SETS)}")
        if not self.splits or any(s not in layout.SPLITS for s in self.splits):
            raise ParameterError("splits", ",".join(self.splits),
                                 f"must be a comma list of {', '.join(layout.SPLITS)}", flag="--split")

    def _validate_task(self) -> None:
        """--positive (binary) or --classes (multi-class), and only the options of that one."""
        if self.classes and self.positive.strip():
            raise MlkitError("--classes and --positive cannot be combined: --positive builds one class vs not "
                             "(binary), --classes one folder per class; give one of them")
        if self.classes:
            self._validate_multiclass()
            return
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

    def _validate_multiclass(self) -> None:
        """--classes: its own options, and none of --positive's."""
        given = [flag for flag, on in (("--negatives", self.negatives is not None),
                                       ("--negative-classes", bool(self.negative_classes)),
                                       ("--verified-negatives", self.verified_negatives),
                                       ("--max-positives", self.max_positives is not None)) if on]
        if given:
            raise MlkitError(f"{_flags(given)} with --positive; with --classes use --other N, "
                             "--other-classes and --max-per-class")
        if any(not c.strip() for c in self.classes):
            raise ParameterError("classes", ", ".join(self.classes),
                                 "must not have an empty name: give a comma list of Open Images display names "
                                 "or MIDs, e.g. --classes \"Hamburger, Pizza\"")
        if self.other is not None and self.other < 1:
            raise ParameterError("other", self.other, "must be at least 1 (the number of 'other' images)")
        if self.other_classes and self.other is None:
            raise MlkitError("--other-classes chooses where the 'other' images come from: add --other N")
        if len(self.classes) < 2 and self.other is None:
            raise MlkitError(f"--classes names one class ({self.classes[0].strip()}): a classifier needs two or "
                             "more; add a class, or --other N to learn it against N images of anything else "
                             "(or use --positive for one class vs not)")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ParameterError("max_per_class", self.max_per_class, "must be at least 1")

    def shaping_settings(self) -> dict:
        d = asdict(self)
        keys = MULTICLASS_SETTINGS if self.multiclass else SETTINGS_THAT_SHAPE_THE_DATASET
        out = {k: d[k] for k in keys}
        for k in ("splits", "negative_classes", "classes", "other_classes"):
            if k in out:
                out[k] = list(out[k])
        if self.exclude is not None:   # what is left out, not where the list lies; absent when none
            out["exclude"] = read_image_exclusion(self.exclude).digest
        return out


def _flags(flags: list[str]) -> str:
    return f"{flags[0]} goes" if len(flags) == 1 else f"{', '.join(flags)} go"
