"""The folder a build writes into, and the generations of a dataset folder.

A folder that holds a finished dataset is never changed in place: a rebuild makes the new
generation beside it in ``DATA_DIR/.<name>.mlkit-next``, hard-links into it the old images
made from the same source with the same processing, and ``Generation.swap_in`` exchanges
the two folders in one step at the end. A folder with no finished dataset (new, or an
interrupted build with the same settings) is written in place. Either way the journal
(``.downloads.jsonl``) records where each file came from before it is renamed into place,
so a kill at any moment loses no provenance, and a rerun removes exactly the files an
earlier run wrote that this plan does not want. A folder mlkit did not make is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from ..errors import MlkitError
from ..fsutil import atomic_write_text, exchange, link_or_copy, recover_exchange
from ..progress import SILENT, Reporter
from .config import DatasetConfig
from .download import DownloadJob, ImageSource
from .manifest import DATASET_FILES, SPLITS, ManifestRow, read_manifest

JOURNAL = ".downloads.jsonl"      # provenance of downloaded files, until manifest.csv has it
BUILD_SETTINGS = ".build.json"     # the settings of a build in progress (dataset.json's once done)
NEXT_SUFFIX = ".mlkit-next"        # DATA_DIR/.<name>.mlkit-next: the generation being built
LOCK_SUFFIX = ".lock"              # DATA_DIR/.<name>.lock: held while a build writes the dataset

Wanted = dict[str, tuple[str, set[str]]]   # relative path -> (processing fingerprint, the source URLs it may come from)


class Generation:
    """The folder a build writes (``work``): ``root`` itself, or the next generation beside it."""

    def __init__(self, root: Path, work: Path, wanted: Wanted) -> None:
        self.root, self.work, self.wanted = root, work, wanted
        self.journal = work / JOURNAL
        self._journal_lock = threading.Lock()

    def record(self, job: DownloadJob, source: ImageSource) -> None:
        """Journal where ``job``'s file came from and how it was made (``before_commit``)."""
        # where each file came from and how it was made, written before the file is renamed
        # into place, so a kill at any moment loses no provenance
        rel = job.dest.relative_to(self.work).as_posix()
        with self._journal_lock, open(self.journal, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": job.key, "path": rel, "url": source.url, "kind": source.kind,
                                "fp": self.wanted[rel][0]}) + "\n")
            f.flush()

    def swap_in(self) -> None:
        """Make the finished ``work`` the dataset, and drop what only a build in progress needs."""
        if self.work != self.root:
            exchange(self.root, self.work)      # the one instant the dataset changes: old -> new, complete
            shutil.rmtree(self.work)            # the old generation (unrecognised leftovers are removed next run)
        (self.root / JOURNAL).unlink(missing_ok=True)
        (self.root / BUILD_SETTINGS).unlink(missing_ok=True)


def open_generation(root: Path, config: DatasetConfig, wanted: Wanted, reporter: Reporter = SILENT) -> Generation:
    """The folder to write this build into, ready: refused if it is not mlkit's or was built
    with other settings (without --force), cleared of what this plan does not want, and, in a
    rebuild, holding the old images it can reuse."""
    recover_exchange(root)
    state = check_settings(root, config)
    staging = root.with_name(f".{root.name}{NEXT_SUFFIX}")
    old_rows: dict[str, ManifestRow] = {}
    if state == "complete":
        old_rows = {r.path: r for r in read_old_manifest(root / "manifest.csv") if r.status == "ok"}
        refuse_foreign(root, set(old_rows), top_level=True)
        work = staging
        if staging.exists() and read_settings(staging / BUILD_SETTINGS) != config.shaping_settings():
            shutil.rmtree(staging)  # an interrupted rebuild with other settings, or a swapped-out old one
        reporter.note(f"Building the new dataset beside the old one ({work.name}); {root} stays as it is until "
                      "it is complete.")
    else:
        work = root
        if staging.exists():
            shutil.rmtree(staging)
    work.mkdir(parents=True, exist_ok=True)
    generation = Generation(root, work, wanted)
    records = journal_records(generation.journal)
    refuse_foreign(work, set(records), top_level=False)
    atomic_write_text(work / BUILD_SETTINGS, json.dumps(config.shaping_settings(), indent=2) + "\n")
    remove_stale(work, wanted, records)
    if old_rows:
        reuse_old_images(root, work, wanted, old_rows, records, generation.journal)
    return generation


def journal_records(journal: Path) -> dict[str, dict]:
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


def read_old_manifest(path: Path) -> list[ManifestRow]:
    """The rows of a finished dataset's manifest.csv (none when it has none)."""
    try:
        return read_manifest(path)
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as exc:
        raise MlkitError(f"{path} is unreadable ({exc}); mlkit cannot tell which files in {path.parent} are its "
                         "own: move the folder away, or choose another --name") from None


def read_settings(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_settings(root: Path, config: DatasetConfig) -> str:
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
        info = read_settings(finished)
        previous = (info or {}).get("settings", {})
    else:
        previous = read_settings(in_progress) or {}
    current = config.shaping_settings()
    changed = sorted(k for k in current if previous.get(k) != current[k])
    if changed and not config.force:
        raise MlkitError(f"{root} was built with other settings ({', '.join(changed)}). Pass --force to "
                         "rebuild it (images that no longer belong are removed), or --name for a new dataset.")
    return "complete" if finished.is_file() else "resume"


_OWN_TOP_LEVEL = set(DATASET_FILES) | {BUILD_SETTINGS, JOURNAL}


def refuse_foreign(root: Path, ours: set[str], *, top_level: bool) -> None:
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


def remove_stale(work: Path, wanted: Wanted, records: dict[str, dict]) -> None:
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


def reuse_old_images(root: Path, work: Path, wanted: Wanted, old_rows: dict[str, ManifestRow],
                     records: dict[str, dict], journal: Path) -> None:
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
