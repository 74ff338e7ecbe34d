"""``import graphrec`` stays light: no torch-geometric (about 2 s), no torch, at import time."""
from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_import_graphrec_is_light():
    mods = _modules_after("import graphrec")
    assert "torch" not in mods and "torch_geometric" not in mods and "sklearn" not in mods


def test_subpackages_do_not_import_pyg():
    mods = _modules_after("import graphrec.datasets, graphrec.cluster, graphrec.metrics, graphrec.bench, graphrec.cli")
    assert "torch_geometric" not in mods
