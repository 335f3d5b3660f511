"""``DatasetResult``: what a build made (or with a dry run, would make), as ``--json`` shows it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..openimages.ontology import OIClass, RelatedClass
from ..openimages.plan import MetadataPlan
from .selection import Balance


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
