"""A dry run: the plan of a build, downloading no image. Before the metadata is cached it
stops at the metadata plan (what a build would download first); once it is, it lists the
images a build would download."""

from __future__ import annotations

import time
from pathlib import Path

from ..openimages.metadata import OpenImagesMetadata
from ..openimages.plan import MetadataPlan, metadata_files
from .classes import class_folders, resolve_classes
from .config import DatasetConfig
from .plan import DatasetPlan, image_sources
from .result import DatasetResult
from .selection import Balance, class_folder_name


def class_files_cached(config: DatasetConfig, metadata: MetadataPlan) -> bool:
    """Whether the class names (and hierarchy, where the source has one) are on disk."""
    cached = {f.relpath for f in metadata.files if f.cached}
    listed = {f.relpath for f in metadata.files}
    small = [p for p, _, _ in metadata_files(config.label_set, config.splits, False)[:2] if p in listed]
    return all(p in cached for p in small)


def metadata_only(config: DatasetConfig, metadata: MetadataPlan, t0: float,
                  meta: OpenImagesMetadata | None) -> DatasetResult:
    """A dry run before the metadata is cached: download nothing, report the plan. The
    positive class (or the classes) is checked when the class files are cached already."""
    positive, related, notes = None, [], []
    if meta is not None and config.multiclass:
        classes = resolve_classes(config, meta)
        related = [r for c in classes for r in meta.related(c)]
        folder = "_".join(class_folders(classes, config.other is not None))
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


def dry_run_result(plan: DatasetPlan, t0: float) -> DatasetResult:
    """A dry run with the metadata cached: the images a build would download, and where to."""
    sel = plan.selection
    listing = [{"ImageID": p.image_id, "class": p.class_name, "split": p.split, "oi_subset": p.oi_subset,
                "url": image_sources(p, plan.images_base)[0].url} for p in plan.images]
    return DatasetResult(plan.root, plan.name, sel.positive, sel.related, list(sel.folders), plan.planned,
                         {c: {} for c in plan.planned}, sel.balance, sel.balance.class_weights, {}, 0, 0, 0, "",
                         True, plan.estimated_bytes, time.perf_counter() - t0, sel.notes, listing,
                         metadata_plan=plan.metadata, **sel.result_fields())
