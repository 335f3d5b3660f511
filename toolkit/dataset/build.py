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

The steps, one module each: ``config`` (what is asked, checked), ``classes`` (the classes
named, against the hierarchy), ``binary`` / ``multiclass`` (which images each class takes),
``plan`` (which image goes where), ``dryrun``, ``generations`` (the folder written and its
swap), ``assemble`` (download and record, under the lock), ``records`` (manifest.csv,
dataset.json, ...), ``result``.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..fsutil import check_writable, locked
from ..openimages.fetch import default_cache_dir, metadata_source
from ..openimages.metadata import OpenImagesMetadata, load_metadata
from ..openimages.ontology import OIClass
from ..openimages.plan import MetadataPlan, metadata_plan
from ..progress import SILENT, Reporter
from .assemble import build_locked
from .binary import select_binary
from .classes import resolve_classes
from .config import MULTICLASS_SETTINGS, OTHER_FOLDER, SETTINGS_THAT_SHAPE_THE_DATASET, DatasetConfig
from .dryrun import class_files_cached, dry_run_result, metadata_only
from .exclusions import read_image_exclusion
from .generations import BUILD_SETTINGS, JOURNAL, LOCK_SUFFIX, NEXT_SUFFIX
from .multiclass import select_classes
from .plan import PlannedImage, plan_dataset
from .selected import LeaveOut
from .result import DatasetResult

__all__ = ["build_dataset", "DatasetConfig", "DatasetResult", "PlannedImage", "JOURNAL", "BUILD_SETTINGS",
           "NEXT_SUFFIX", "LOCK_SUFFIX", "OTHER_FOLDER", "SETTINGS_THAT_SHAPE_THE_DATASET", "MULTICLASS_SETTINGS"]


def build_dataset(config: DatasetConfig, reporter: Reporter = SILENT) -> DatasetResult:
    """Select, download and lay out a dataset (or with ``dry_run``, only report the plan)."""
    t0 = time.perf_counter()
    config.validate()
    if not config.dry_run:  # before any download: a read-only folder would fail at the very end
        check_writable(config.data_dir, "--data-dir")
    check_writable(config.cache_dir if config.cache_dir is not None else default_cache_dir(), "--cache-dir")
    # one plan of the metadata before any download: each file, its size (HEAD), cached or not
    source = metadata_source(config.source, config.cache_dir)
    metadata = metadata_plan(source, config.label_set, config.splits, config.crop, strict=config.dry_run)
    meta = wanted = None
    if class_files_cached(config, metadata):  # a wrong class name fails before anything is printed
        meta, wanted = _load_and_resolve(config, reporter)
    _tell_metadata(metadata, reporter)
    if config.dry_run and not metadata.all_cached:
        return metadata_only(config, metadata, t0, meta)
    if meta is None:
        meta, wanted = _load_and_resolve(config, reporter)
    leave_out = LeaveOut(read_image_exclusion(config.exclude) if config.exclude is not None else None)
    sel = (select_classes(config, meta, wanted, reporter, leave_out) if config.multiclass
           else select_binary(config, meta, wanted, reporter, leave_out))
    plan = plan_dataset(config, meta, sel, metadata, reporter)
    if config.dry_run:
        return dry_run_result(plan, t0)
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with locked(data_dir / f".{plan.name}{LOCK_SUFFIX}", f"the dataset folder {plan.root}", reporter=reporter):
        return build_locked(config, meta, plan, t0, reporter)


def _load_and_resolve(config: DatasetConfig, reporter: Reporter
                      ) -> tuple[OpenImagesMetadata, OIClass | list[OIClass]]:
    """The metadata (its class files, hierarchy) and the class(es) the config names in it."""
    meta = load_metadata(config.source, config.cache_dir, config.label_set, reporter=reporter)
    return meta, resolve_classes(config, meta)


def _tell_metadata(metadata: MetadataPlan, reporter: Reporter) -> None:
    """The metadata plan: all cached, or what a build downloads first."""
    if metadata.all_cached:
        reporter.note(f"Metadata: all {len(metadata.files)} files cached ({metadata.total_bytes / 1e6:,.1f} MB), "
                      "nothing to download.")
    else:
        for line in metadata.lines():
            reporter.note(line)
