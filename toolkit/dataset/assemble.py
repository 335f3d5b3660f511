"""Writing a planned dataset, under its folder's lock: download the images into the
generation being built, drop duplicates, record every image, and swap the finished
generation in."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from ..errors import MlkitError
from ..openimages.metadata import OpenImagesMetadata
from ..progress import SILENT, Reporter
from .config import DatasetConfig
from .download import DownloadJob, DownloadOptions, DownloadReport, download_images, processing_fingerprint
from .generations import Generation, Wanted, journal_records, open_generation
from .manifest import ManifestRow, content_hash
from .plan import DatasetPlan, PlannedImage, count_by_class, image_sources, rotation_of
from .records import ambiguous_row, manifest_row, write_records
from .result import DatasetResult
from .selection import balance_counts


def build_locked(config: DatasetConfig, meta: OpenImagesMetadata, plan: DatasetPlan, t0: float,
                 reporter: Reporter = SILENT) -> DatasetResult:
    """Everything that writes the dataset folder, under its lock."""
    sel = plan.selection
    options = DownloadOptions(workers=config.workers, max_size=config.max_size)
    jobs = [DownloadJob(key=p.image_id, dest=Path(p.split, p.class_name, f"{p.image_id}.jpg"),
                        sources=image_sources(p, plan.images_base), rotation=rotation_of(p.record), crop=p.crop)
            for p in plan.images]
    wanted = {str(j.dest.as_posix()): (processing_fingerprint(j, options), {s.url for s in j.sources})
              for j in jobs}
    generation = open_generation(plan.root, config, wanted, reporter)
    jobs = [DownloadJob(key=j.key, dest=generation.work / j.dest, sources=j.sources, rotation=j.rotation,
                        crop=j.crop) for j in jobs]

    # --- download --------------------------------------------------------------------------
    report = download_images(jobs, options, reporter=reporter, before_commit=generation.record)

    # --- duplicates, records, summary -----------------------------------------------------
    rows, duplicates = _rows(plan.images, report, journal_records(generation.journal), wanted)
    counts = count_by_class([p for p, r in zip(plan.images, rows) if r.status == "ok"])
    _refuse_empty(plan, counts, report, generation)
    digest = content_hash(rows)
    sources = dict(Counter(r.source_kind for r in rows if r.status == "ok"))
    fallback = _fallback_note(rows, report, sources, plan.images_base)
    if fallback:
        sel.notes.append(fallback)
    rows += [ambiguous_row(image_id, shows, sel) for image_id, shows in sorted(sel.ambiguous.items())]
    result = DatasetResult(plan.root, plan.name, sel.positive, sel.related, list(sel.folders), plan.planned, counts,
                           sel.balance, _class_weights(config, plan, counts), report.failures_by_reason(),
                           duplicates, sum(1 for o in report.outcomes if o.ok and not o.skipped),
                           sum(1 for o in report.outcomes if o.skipped), digest,
                           False, plan.estimated_bytes, 0.0, sel.notes, download_seconds=report.elapsed,
                           sources=sources, metadata_plan=plan.metadata, **sel.result_fields())
    write_records(generation.work, rows, plan.name, sel, config, result, meta)
    generation.swap_in()
    result.elapsed = time.perf_counter() - t0
    return result


def _rows(images: list[PlannedImage], report: DownloadReport, previous: dict[str, dict],
          wanted: Wanted) -> tuple[list[ManifestRow], int]:
    """(the manifest row of each planned image, in order; how many were duplicates). An image
    whose bytes equal an earlier one's is a duplicate: its file is removed."""
    rows: list[ManifestRow] = []
    first_with_md5: dict[str, str] = {}
    duplicates = 0
    for p, out in zip(images, report.outcomes):
        status, reason = ("ok", "") if out.ok else ("failed", out.reason or "unknown")
        if out.ok and out.md5 in first_with_md5:
            status, reason = "duplicate", first_with_md5[out.md5]
            out.dest.unlink(missing_ok=True)
            duplicates += 1
        elif out.ok:
            first_with_md5[out.md5] = p.image_id
        row = manifest_row(p, out, status, reason)
        rel = f"{p.split}/{p.class_name}/{p.image_id}.jpg"
        if out.skipped and rel in previous:  # fetched by an earlier (interrupted) run
            row.source_url, row.source_kind = previous[rel]["url"], previous[rel]["kind"]
        if status == "ok":
            row.processing = wanted[rel][0]
        rows.append(row)
    return rows, duplicates


def _refuse_empty(plan: DatasetPlan, counts: dict[str, dict[str, int]], report: DownloadReport,
                  generation: Generation) -> None:
    """An MlkitError when a class got no image at all: there would be nothing to train on."""
    empty = [c for c in plan.selection.folders if not sum(counts.get(c, {}).values())]
    if empty:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(report.failures_by_reason().items(), key=lambda kv: -kv[1]))
        raise MlkitError(f"no {' and no '.join(empty)} image could be downloaded ({reasons or 'all were duplicates'}), "
                         "so there is nothing to train on"
                         + ("" if generation.work == generation.root else f"; {generation.root} is left as it was")
                         + ". Check --image-source and your network, then run again (finished images are kept).")


def _class_weights(config: DatasetConfig, plan: DatasetPlan, counts: dict[str, dict[str, int]]) -> dict[str, float]:
    """With --balance weights, from the training images actually on disk; else the selection's."""
    balance = plan.selection.balance
    train_counts = {c: counts.get(c, {}).get("train", 0) for c in plan.selection.folders}
    return (balance_counts(train_counts, "weights").class_weights
            if config.balance == "weights" and all(train_counts.values()) else balance.class_weights)


def _fallback_note(rows: list[ManifestRow], report: DownloadReport, sources: dict[str, int],
                   images_base: str) -> str | None:
    """A note when images came from Flickr rather than the CVDF mirror, and a warning when
    the mirror gave none of the images fetched now."""
    fallback = sum(n for k, n in sources.items() if k != "cvdf")
    if not fallback:
        return None
    tried = sum(1 for o in report.outcomes if not o.skipped)
    gone = (f" The image source {images_base} gave none of the {tried} images fetched now: check "
            "--image-source." if tried and not any(r.source_kind == "cvdf" for r, o in zip(rows, report.outcomes)
                                                   if r.status == "ok" and not o.skipped) else "")
    return (f"{fallback} of {sum(sources.values())} images came from Flickr "
            f"({', '.join(f'{n} {k}' for k, n in sorted(sources.items()) if k != 'cvdf')}), not the CVDF "
            f"mirror (manifest.csv's source_kind says which).{gone}")
