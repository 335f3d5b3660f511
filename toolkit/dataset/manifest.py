"""The dataset's records: ``manifest.csv`` (one row per selected image) and
``ATTRIBUTION.md`` (the credit CC BY 2.0 requires, which travels with the images)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..fsutil import atomic_write_text


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
    processing: str = ""   # download.processing_fingerprint of the file ("" in older manifests)

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


SPLITS = ("train", "val", "test")
"""The splits of an mlkit dataset folder, in order (Open Images' own are ``layout.SPLITS``)."""
DATASET_JSON = "dataset.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
"""The image files a dataset folder (ours or a user's plain folder) may hold, by suffix."""
DATASET_FILES = ("manifest.csv", "ATTRIBUTION.md", "dataset.json", "preview.png")


def content_hash(rows: Sequence[ManifestRow]) -> str:
    """SHA-256 over the ``path md5`` lines of the images on disk (dataset.json records it)."""
    h = hashlib.sha256()
    for r in sorted((r for r in rows if r.status == "ok"), key=lambda r: r.path):
        h.update(f"{r.path} {r.md5}\n".encode())
    return h.hexdigest()


def verify_dataset(root: Path | str, *, checksums: bool = False) -> list[str]:
    """What is wrong with the dataset folder ``root``: one sentence per problem, none when
    its images are exactly the ones its manifest lists (each of the recorded size, and with
    ``checksums`` the recorded MD5), no image is in two splits, and dataset.json's content
    hash is the manifest's. Reads only; cheap without ``checksums`` (one stat per file)."""
    root = Path(root)
    problems: list[str] = []
    if (root / ".build.json").exists():
        problems.append(f"a build of {root} is unfinished (.build.json is there): run the same "
                        "build-dataset command again to finish it")
    try:
        info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return problems + [f"{root} has no dataset.json: it is not a finished mlkit dataset"]
    except (OSError, ValueError) as exc:
        return problems + [f"{root / 'dataset.json'} is unreadable ({exc})"]
    try:
        rows = read_manifest(root / "manifest.csv")
    except FileNotFoundError:
        return problems + [f"{root} has no manifest.csv"]
    except (OSError, ValueError, TypeError) as exc:
        return problems + [f"{root / 'manifest.csv'} is unreadable ({exc})"]
    ok = [r for r in rows if r.status == "ok"]
    listed = {r.path: r for r in ok}
    splits_of: dict[str, set[str]] = {}
    for r in ok:
        splits_of.setdefault(r.ImageID, set()).add(r.split)
    both = sorted(i for i, s in splits_of.items() if len(s) > 1)
    if both:
        problems.append(f"{len(both)} images are in more than one split (e.g. {both[0]})")
    on_disk = {str(f.relative_to(root).as_posix()) for s in SPLITS if (root / s).is_dir()
               for f in (root / s).rglob("*") if f.is_file()}
    extra = sorted(on_disk - set(listed))
    if extra:
        problems.append(f"{len(extra)} files are not in the manifest (e.g. {extra[0]})")
    missing = sorted(set(listed) - on_disk)
    if missing:
        problems.append(f"{len(missing)} manifest rows have no file (e.g. {missing[0]})")
    wrong = []
    for path in sorted(set(listed) & on_disk):
        r = listed[path]
        f = root / path
        if str(r.size) and f.stat().st_size != int(r.size):
            wrong.append(path)
        elif checksums and r.md5 and _md5(f) != r.md5:
            wrong.append(path)
    if wrong:
        problems.append(f"{len(wrong)} files differ from their manifest row (e.g. {wrong[0]})")
    if info.get("content_hash") and info["content_hash"] != content_hash(rows):
        problems.append("dataset.json and manifest.csv describe different images (content hash differs)")
    return problems


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


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
