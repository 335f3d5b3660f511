"""The dataset's records: ``manifest.csv`` (one row per selected image) and
``ATTRIBUTION.md`` (the credit CC BY 2.0 requires, which travels with the images)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .fsutil import atomic_write_text


@dataclass
class ManifestRow:
    ImageID: str
    class_name: str
    split: str
    status: str            # "ok" | "failed" | "duplicate"
    reason: str            # failure reason code, or the ImageID this one duplicates
    source_url: str
    source_kind: str       # cvdf | thumbnail | original
    md5: str               # hex MD5 of the file in the dataset
    size: int | str
    width: int | str
    height: int | str
    license: str
    author: str
    author_profile: str
    title: str
    landing_page: str
    original_url: str
    oi_subset: str         # the Open Images split the image comes from

    @property
    def path(self) -> str:
        return f"{self.split}/{self.class_name}/{self.ImageID}.jpg"


MANIFEST_COLUMNS = [f.name if f.name != "class_name" else "class" for f in fields(ManifestRow)]


def write_manifest(path: Path, rows: Sequence[ManifestRow]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for r in sorted(rows, key=lambda r: (r.split, r.class_name, r.ImageID)):
        w.writerow(list(asdict(r).values()))
    atomic_write_text(path, buf.getvalue())


def read_manifest(path: Path) -> list[ManifestRow]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return [ManifestRow(**{("class_name" if k == "class" else k): v for k, v in row.items()})
                for row in reader]


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("|", "\\|") \
        .replace("\n", " ").strip()


def write_attribution(path: Path, rows: Sequence[ManifestRow], dataset_name: str) -> None:
    ok = [r for r in rows if r.status == "ok"]
    licenses = sorted({r.license for r in ok if r.license})
    lines = [
        f"# Attribution for the dataset `{dataset_name}`",
        "",
        "The images come from [Open Images](https://storage.googleapis.com/openimages/web/index.html)",
        "(annotations CC BY 4.0, Google LLC). Each image was shared on Flickr by its author under",
        "the license listed below, as recorded in the Open Images image list; most are",
        "[CC BY 2.0](https://creativecommons.org/licenses/by/2.0/), which lets you copy and adapt",
        "them, including commercially, as long as you credit the author, link the license, and",
        "say if you changed the image. Verify each image's license on its page before",
        "redistributing it. Images in this dataset may be resized, rotated or cropped.",
        "",
        f"{len(ok)} images; licenses: " + (", ".join(licenses) if licenses else "none recorded") + ".",
        "",
        "| Image | Class | Title | Author | License |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(ok, key=lambda r: (r.class_name, r.ImageID)):
        title = _md(r.title) or "untitled"
        title_cell = f"[{title}]({r.landing_page})" if r.landing_page else title
        author = _md(r.author) or "unknown"
        author_cell = f"[{author}]({r.author_profile})" if r.author_profile else author
        lic = f"[{_license_name(r.license)}]({r.license})" if r.license else "unknown"
        lines.append(f"| `{r.path}` | {r.class_name} | {title_cell} | {author_cell} | {lic} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def _license_name(url: str) -> str:
    parts = [p for p in url.rstrip("/").split("/") if p]
    if "licenses" in parts:
        i = parts.index("licenses")
        return "CC " + " ".join(p.upper() if not p[0].isdigit() else p for p in parts[i + 1:])
    return url
