"""Session fixtures for the real-API-server tier (tests/envtest.py): one control plane for the
whole run, and one more with consumable capacity off, as Kubernetes 1.34-1.35 ship it."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.envtest import HOW, ControlPlane, assets, control_plane

MUTATING = "mutants" in Path(__file__).resolve().parts
"""`make mutation` runs the tests from mutmut's copy in mutants/ (tests/mutation/README.md)."""

if MUTATING:  # the same examples on every run, so a mutant's fate never depends on a seed
    settings.register_profile("mutation", derandomize=True, database=None)
    settings.load_profile("mutation")

    @pytest.fixture(autouse=True)
    def _cold_caches() -> None:
        """mutmut runs each mutant in a process forked from one whose caches the clean run
        warmed: cleared, a cached function's mutant takes effect."""
        from castslice.functions.patch import _key, resource_held

        _key.cache_clear()
        resource_held.cache_clear()


def _need_assets() -> None:
    """Skip with how to get them; in CI, which installs them, their absence is a failure."""
    if assets() is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(HOW)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver v1.36 on loopback, started once; skips where none is installed."""
    _need_assets()
    with control_plane(tmp_path_factory.mktemp("kube")) as plane:
        yield plane


@pytest.fixture(scope="session")
def kube_1_35(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """An API server with DRAConsumableCapacity off: what 1.34 and 1.35 store."""
    _need_assets()
    with control_plane(tmp_path_factory.mktemp("kube-1.35"),
                       feature_gates="DRAConsumableCapacity=false") as plane:
        yield plane
