"""``graphrec.core.scatter`` against a Python loop and against PyG's scatter."""
from __future__ import annotations

import pytest
import torch

from graphrec.core import scatter


def _loop(src, index, size, reduce):
    out = torch.zeros((size, *src.shape[1:]), dtype=src.dtype)
    for pos in range(size):
        rows = src[index == pos]
        if len(rows) == 0:
            continue
        out[pos] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values, "min": rows.min(0).values, "mul": rows.prod(0)}[reduce]
    return out


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "mul"])
def test_matches_loop_and_pyg(reduce):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(50, 3, generator=g, dtype=torch.float64)
    index = torch.randint(0, 12, (50,), generator=g)
    out = scatter(src, index, dim=0, dim_size=14, reduce=reduce)  # positions 12, 13 stay empty
    torch.testing.assert_close(out, _loop(src, index, 14, reduce))
    from torch_geometric.utils import scatter as pyg_scatter

    # PyG leaves empty positions at 1 for "mul"; compare where there is something to reduce.
    filled = torch.bincount(index, minlength=14) > 0
    torch.testing.assert_close(out[filled], pyg_scatter(src, index, dim=0, dim_size=14, reduce=reduce)[filled])


def test_other_dim_and_errors():
    src = torch.arange(6.0).view(2, 3)
    torch.testing.assert_close(scatter(src, torch.tensor([1, 0, 1]), dim=1), torch.tensor([[1.0, 2.0], [4.0, 8.0]]))
    with pytest.raises(ValueError, match="reduce"):
        scatter(src, torch.tensor([0, 1]), reduce="median")
    with pytest.raises(ValueError, match="2 entries but src has 3"):
        scatter(src, torch.tensor([0, 1]), dim=1)
    with pytest.raises(ValueError, match="dim_size is 1"):
        scatter(src, torch.tensor([0, 1, 2]), dim=1, dim_size=1)
