"""Shared fixtures. Tests read real data from ``$GRAPHREC_DATA`` (CI points it at the shared copy)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
if "GRAPHREC_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["GRAPHREC_DATA"] = str(_SHARED)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared real-data root; tests needing it are skipped only when no copy exists at all."""
    root = Path(os.environ["GRAPHREC_DATA"]) if "GRAPHREC_DATA" in os.environ else None
    if root is None or not root.is_dir():
        pytest.skip("no real-data root: set GRAPHREC_DATA to the shared datasets folder")
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Processed caches and downloads go to a per-session temp folder, never to ~/.cache or the share."""
    cache = tmp_path_factory.getbasetemp() / "graphrec-cache"
    monkeypatch.setattr("graphrec._config.DEFAULT_DATA_HOME", cache)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op and one BLAS thread for a module of small models: on a shared 2-core machine the
    second thread only adds OpenMP waits. Restored afterwards. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def intra_op_threads():
    """``intra_op_threads(n)`` sets torch's intra-op thread count for one test; restored afterwards."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)
