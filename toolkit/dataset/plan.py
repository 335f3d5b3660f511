"""Which image goes where: a selection's images with their image-list records, boxes (for
``--crop``), split, and the sources to download each one from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import MlkitError
from ..openimages import layout
from ..openimages.fetch import fetch
from ..openimages.labelindex import ids_to_hex
from ..openimages.metadata import OpenImagesMetadata
from ..openimages.plan import MetadataPlan
from ..openimages.tablecache import open_csv_table
from ..progress import SILENT, Reporter
from .config import DatasetConfig
from .download import ImageSource
from .selected import Selection, subset_lookup
from .selection import assign_splits

Box = tuple[float, float, float, float]   # x0, y0, x1, y1, fractions of the width and height


@dataclass
class PlannedImage:
    image_id: str
    class_name: str
    split: str            # our split: train | val | test
    oi_subset: str        # the Open Images split it comes from
    record: dict          # its image-list row (URLs, attribution, rotation)
    crop: Box | None = None


@dataclass
class DatasetPlan:
    """What a build makes: the folder, the images in it, and the selection they come from."""

    name: str
    root: Path                               # data_dir / name
    selection: Selection
    images: list[PlannedImage]
    planned: dict[str, dict[str, int]]       # class -> split -> planned images
    estimated_bytes: int
    images_base: str                         # the CVDF mirror's base URL
    metadata: MetadataPlan


def plan_dataset(config: DatasetConfig, meta: OpenImagesMetadata, sel: Selection, metadata: MetadataPlan,
                 reporter: Reporter = SILENT) -> DatasetPlan:
    """The images of ``sel`` placed in splits, with what to download them from; says what was selected."""
    name = config.name or sel.default_name
    subset_of = subset_lookup(sel.drawn_from)
    chosen, records = _with_records(config, meta, sel, subset_of, reporter)
    crops: dict[str, Box] = {}
    if config.crop:
        for folder, mids in sel.crop_mids.items():
            crops.update(_crops(meta, config, chosen[folder], mids, subset_of, reporter))
    split_of = assign_splits(chosen, config.val, config.test, config.seed)
    images = [PlannedImage(i, c, split_of[i], subset_of[i], records[i], crops.get(i))
              for c in sel.folders for i in chosen[c]]
    parts = [f"{len(chosen[f])} {f}" for f in sel.folders]
    reporter.note(f"Selected {', '.join(parts[:-1])} and {parts[-1]} images (balance: {config.balance}, seed "
                  f"{config.seed})." + (f" {len(sel.ambiguous)} images verified for two or more of the classes are "
                                        "left out as ambiguous." if sel.ambiguous else ""))
    return DatasetPlan(name=name, root=Path(config.data_dir) / name, selection=sel, images=images,
                       planned=count_by_class(images),
                       estimated_bytes=sum(_estimate_bytes(p.record, config.max_size) for p in images),
                       images_base=config.image_source or layout.CVDF_IMAGES_BASE, metadata=metadata)


def _with_records(config: DatasetConfig, meta: OpenImagesMetadata, sel: Selection, subset_of: dict[str, str],
                  reporter: Reporter) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """(folder -> the chosen ImageIDs (hex) that the image lists have, ImageID -> its record);
    notes the ones missing, and an MlkitError where a class is left with none."""
    chosen = {f: ids_to_hex(sel.chosen[f]) for f in sel.folders}
    records = _image_records(meta, config, {i: subset_of[i] for ids in chosen.values() for i in ids}, reporter)
    missing = [i for ids in chosen.values() for i in ids if i not in records]
    if missing:
        sel.notes.append(f"{len(missing)} selected images are missing from the image list and were skipped")
    chosen = {c: [i for i in ids if i in records] for c, ids in chosen.items()}
    for c, ids in chosen.items():
        if not ids:
            raise MlkitError(f"none of the selected {c} images is in the image list of the "
                             f"{', '.join(config.splits)} split(s), so the dataset would have no {c} images; "
                             "check that --source has the image lists of those splits, or use other --split")
    return chosen, records


def _image_records(meta: OpenImagesMetadata, config: DatasetConfig, subset_of: dict[str, str],
                   reporter: Reporter) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for split in config.splits:
        ids = [i for i, s in subset_of.items() if s == split]
        if not ids:
            continue
        path = fetch(meta.source, layout.image_list_path(split, config.label_set), reporter=reporter)
        table = open_csv_table(path, meta.source.cache_dir, ["ImageID", "OriginalURL", "License", "Author"],
                               kind="image list", reporter=reporter)
        for row in table.rows_for(ids).to_pylist():
            out[row["ImageID"]] = row
    return out


def _crops(meta: OpenImagesMetadata, config: DatasetConfig, positives: Sequence[str], mids: Sequence[str],
           subset_of: dict[str, str], reporter: Reporter) -> dict[str, Box]:
    """The largest box of a positive class per image, widened by the margin, clamped to 0..1.

    Open Images gives boxes in the frame of the stored picture (its page "Rotated images in
    Open Images": Rotation says how far "the image and boxes" should be turned), so they go
    to the download as they are: it cuts the box before turning the image upright."""
    out: dict[str, Box] = {}
    m = config.crop_margin
    for split in config.splits:
        ids = [i for i in positives if subset_of.get(i) == split]
        if not ids:
            continue
        path = fetch(meta.source, layout.boxes_path(split), reporter=reporter)
        table = open_csv_table(path, meta.source.cache_dir, ["ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax"],
                               kind="boxes file", reporter=reporter)
        best: dict[str, tuple[float, Box]] = {}
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


def image_sources(p: PlannedImage, images_base: str) -> tuple[ImageSource, ...]:
    """CVDF mirror first (boxable images; others answer 404 at once), then Flickr's
    300K thumbnail, then the Flickr original (whose MD5 Open Images records)."""
    rec = p.record
    out = [ImageSource(layout.cvdf_image_url(images_base, p.oi_subset, p.image_id), "cvdf")]
    if rec.get("Thumbnail300KURL"):
        out.append(ImageSource(rec["Thumbnail300KURL"], "thumbnail"))
    if rec.get("OriginalURL"):
        out.append(ImageSource(rec["OriginalURL"], "original", rec.get("OriginalMD5") or None))
    return tuple(out)


def rotation_of(rec: dict) -> float | None:
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


def count_by_class(images: Sequence[PlannedImage]) -> dict[str, dict[str, int]]:
    """Class -> split -> images."""
    out: dict[str, Counter] = {}
    for p in images:
        out.setdefault(p.class_name, Counter())[p.split] += 1
    return {c: {s: cnt.get(s, 0) for s in ("train", "val", "test")} for c, cnt in out.items()}
