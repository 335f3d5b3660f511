"""``mlkit demo``: the whole job, offline, on the embedded Open Images mirror."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .dataset import DatasetConfig, DatasetResult, build_dataset
from .mirror import start_mirror


@dataclass
class DemoResult:
    workdir: Path
    dataset: DatasetResult

    def to_json(self) -> dict:
        return {"workdir": str(self.workdir), "dataset": self.dataset.to_json()}


def run_demo(workdir: Path, *, progress: bool = True, log: Callable[[str], None] | None = None) -> DemoResult:
    """Generate the mirror, serve it on 127.0.0.1, and build a 'Hot dog' dataset from it
    exactly as from Open Images (real HTTP, the official file layout and schemas)."""
    say = log or (lambda _m: None)
    workdir = Path(workdir)
    say(f"Generating the embedded Open Images mirror in {workdir / 'mirror'} ...")
    server, info = start_mirror(workdir / "mirror")
    with server:
        say(f"Serving it at {info.base_url}; building the dataset ...")
        config = DatasetConfig(positive="Hot dog", negatives=120, data_dir=workdir / "data",
                               source=info.metadata_base, image_source=info.images_base,
                               cache_dir=workdir / "cache", progress=progress, force=True)
        result = build_dataset(config, log=log)
    return DemoResult(workdir, result)
