"""The files that describe a built dataset: manifest.csv (one row per image, attribution
and provenance), ATTRIBUTION.md, preview.png and dataset.json (what the trainer reads)."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..errors import MlkitError
from ..fsutil import atomic_write_text, describe_write_error
from ..openimages import layout
from ..openimages.metadata import OpenImagesMetadata
from .config import OTHER_FOLDER, DatasetConfig
from .download import DownloadOutcome
from .manifest import ManifestRow, write_attribution, write_manifest
from .plan import PlannedImage
from .preview import contact_sheet
from .result import DatasetResult
from .selected import Selection


def manifest_row(p: PlannedImage, out: DownloadOutcome, status: str, reason: str) -> ManifestRow:
    """The row of a planned image: where it came from (when it is in the dataset) and its attribution."""
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


def ambiguous_row(image_id: str, shows: tuple[str, ...], sel: Selection) -> ManifestRow:
    """The manifest row of an image left out because it is verified for two or more of the
    classes: in no split, its class the folders it shows joined by '+'."""
    names = {i["folder"]: i["name"] for i in sel.class_info}
    return ManifestRow(ImageID=image_id, class_name="+".join(shows), split="", status="ambiguous",
                       reason="verified for " + ", ".join(names.get(f, f) for f in shows), source_url="",
                       source_kind="", md5="", size="", width="", height="", license="", author="",
                       author_profile="", title="", landing_page="", original_url="",
                       oi_subset=sel.ambiguous_subset.get(image_id, ""))


def write_records(work: Path, rows: list[ManifestRow], name: str, sel: Selection, config: DatasetConfig,
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
