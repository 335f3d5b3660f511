"""Shared fixtures: the embedded Open Images mirror over real HTTP, and ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests' shared helpers (tests/helpers_*.py) assert too: pytest explains their failures
# as it does a test's. (Registered before any test module imports them.)
pytest.register_assert_rewrite("helpers_arrays", "helpers_datasets", "helpers_models", "helpers_process")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MLKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache directory."""
    monkeypatch.setenv("MLKIT_CACHE", str(tmp_path_factory.mktemp("mlkit-cache")))


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    """The default embedded mirror, generated once and served on 127.0.0.1 for the session.

    Yields (server, info): ``info.metadata_base`` / ``info.images_base`` are the two base
    URLs; ``server.set_faults(...)`` injects faults (reset it to None afterwards)."""
    from toolkit.mirror import start_mirror

    server, info = start_mirror(tmp_path_factory.mktemp("mirror"))
    with server:
        yield server, info


@pytest.fixture
def mirror_config(mirror, tmp_path):
    """A DatasetConfig factory pointed at the mirror, writing under tmp_path."""
    from toolkit.dataset.build import DatasetConfig

    server, info = mirror
    server.set_faults(None)

    def make(**kw):
        base = dict(positive="Hot dog", data_dir=tmp_path / "data", source=info.metadata_base,
                    image_source=info.images_base, cache_dir=tmp_path / "cache")
        base.update(kw)
        return DatasetConfig(**base)

    yield make
    server.set_faults(None)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test (with the reason) when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared/data beside the project); absent here")
    return path


@pytest.fixture(scope="session")
def mirror_dataset(mirror, tmp_path_factory) -> Path:
    """The mirror's 'Hot dog' dataset (128 px), built once per session, for tests that only read it."""
    from toolkit.dataset.build import DatasetConfig, build_dataset

    server, info = mirror
    server.set_faults(None)
    root = tmp_path_factory.mktemp("mirror-dataset")
    config = DatasetConfig(positive="Hot dog", data_dir=root / "data", source=info.metadata_base,
                           image_source=info.images_base, cache_dir=root / "cache", max_size=128)
    return build_dataset(config).path
