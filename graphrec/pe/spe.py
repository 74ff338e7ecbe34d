"""SPE: stable and expressive positional encodings from Laplacian eigenpairs.

``SPE(V, lambda) = rho(V diag(phi_1(lambda)) V^T, ..., V diag(phi_m(lambda)) V^T)``

- ``phi_l`` (:class:`ElementwisePhi`, :class:`DeepSetsPhi`): permutation-equivariant functions
  of the eigenvalues. (The official code calls these "psi".)
- ``rho`` (:class:`GINRho`): a GIN run over the first node axis of the ``n x n x m`` tensor
  ``W[i, j, l] = (V diag(phi_l(lambda)) V^T)[i, j]``, with the second axis ``j`` as a batch
  axis, followed by a sum over ``j``: the node PE. (The official code calls this "phi".)

Because ``W`` depends on ``V`` only through ``V diag(f(lambda)) V^T`` with ``f`` a function of
the eigenvalue's value, the PE is invariant to eigenvector signs and to any orthonormal basis
of a repeated eigenspace (provided the eigenspace is not cut by the truncation at ``d``).

Layout. A batch holds graphs of different sizes ``n_g``. The pair tensor is never padded (the
official code pads every graph's columns to the batch's largest graph, ``N_sum * N_max`` rows):
it holds the ``P = sum_g n_g^2`` real ``(i, j)`` pairs, graphs grouped by size, so the MLPs run
on ``P`` rows, message passing is one sparse ``(P, P)`` product, and normalisation statistics
(BatchNorm) only ever see real pairs and real eigenvalues.

Reference: Y. Huang, W. Lu, J. Robinson, Y. Yang, M. Zhang, S. Jegelka, P. Li, "On the
Stability of Expressive Positional Encodings for Graphs", ICLR 2024 (arXiv 2310.02579).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from graphrec.core.sparse import sparse_csr_tensor
from graphrec.pe import _fused
from graphrec.utils.threads import for_each_on_workers


__all__ = ["SPE", "ElementwisePhi", "DeepSetsPhi", "GINRho", "MLP"]


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------
class MLP(nn.Module):
    """``n_layers`` linear layers with BatchNorm (optional) and ReLU between them.

    ``Linear(in, hidden), [BN], ReLU, ..., Linear(hidden, out)``; with ``n_layers=1`` a single
    ``Linear(in, out)``. Rows are independent except through BatchNorm's batch statistics.
    """

    def __init__(self, in_dims: int, hidden_dims: int, out_dims: int, n_layers: int = 3, batch_norm: bool = True):
        super().__init__()
        dims = [in_dims] + [hidden_dims] * (n_layers - 1) + [out_dims]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(b) if batch_norm else nn.Identity() for b in dims[1:-1]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (R, in) -> (R, out)."""
        for linear, norm in zip(self.linears[:-1], self.norms):
            x = torch.relu(norm(linear(x)))
        return self.linears[-1](x)


class ElementwisePhi(nn.Module):
    """``m`` independent MLPs ``phi_l: R -> R`` applied to every eigenvalue (the official ZINC phi).

    Each ``phi_l`` is ``Linear(1, h), BN, ReLU, ..., Linear(h, 1)``; the ``m`` MLPs are evaluated
    together with stacked weights. BatchNorm statistics are taken over the real eigenvalues only.

    Parameters
    ----------
    n_phis : int
        ``m``, the number of eigenvalue functions (channels of ``W``).
    hidden_dims, n_layers : int
        Width and depth of each MLP (official: 16, 3).
    batch_norm : bool
    """

    def __init__(self, n_phis: int = 16, hidden_dims: int = 16, n_layers: int = 3, batch_norm: bool = True):
        super().__init__()
        self.n_phis = n_phis
        dims = [1] + [hidden_dims] * (n_layers - 1) + [1]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(n_phis, a, b)) for a, b in zip(dims[:-1], dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(n_phis, b)) for b in dims[1:])
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n_phis * b) if batch_norm else nn.Identity() for b in dims[1:-1]
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default: weights and biases uniform in ``+-1/sqrt(fan_in)``."""
        for w, b in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, eigvals: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
        """``eigvals`` (R,) real eigenvalues of all graphs -> ``phi_l(lambda)`` (R, m)."""
        x = eigvals.reshape(-1, 1, 1).expand(-1, self.n_phis, 1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.einsum("rmi,mio->rmo", x, w) + b
            if k < last:
                shape = x.shape
                x = torch.relu(self.norms[k](x.reshape(shape[0], shape[1] * shape[2])).reshape(shape))
        return x[..., 0]


class DeepSetsPhi(nn.Module):
    """``phi: R^d -> R^{d x m}`` as a DeepSets network over each graph's set of eigenvalues.

    Layer: ``x_i <- ReLU(x_i Gamma + mean_{j real} x_j Lambda + b)``; the mean runs over the
    graph's real eigenvalues only (padding never enters). Permutation-equivariant over the
    eigenvalues and more expressive than elementwise functions (each ``phi_l(lambda)_i`` may
    depend on the whole spectrum). Zaheer et al., "Deep Sets", NeurIPS 2017.

    Parameters
    ----------
    n_phis : int
        ``m``, output channels.
    hidden_dims, n_layers : int
    """

    def __init__(self, n_phis: int = 16, hidden_dims: int = 16, n_layers: int = 3):
        super().__init__()
        self.n_phis = n_phis
        dims = [1] + [hidden_dims] * (n_layers - 1) + [n_phis]
        self.element = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.context = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, eigvals: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
        """``eigvals`` (R,), ``graph`` (R,) graph id of each -> (R, m)."""
        x = eigvals.reshape(-1, 1)
        counts = torch.bincount(graph, minlength=n_graphs).clamp(min=1).to(x.dtype).unsqueeze(1)
        last = len(self.element) - 1
        for k, (element, context) in enumerate(zip(self.element, self.context)):
            mean = torch.zeros(n_graphs, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, graph, x) / counts
            x = element(x) + context(mean)[graph]
            if k < last:
                x = torch.relu(x)
        return x


class GINRho(nn.Module):
    """``rho``: a GIN over the node axis of the pair tensor, then a sum over the column axis.

    Layer ``t``: ``H <- MLP_t((1 + eps_t) H + A H)`` where ``(A H)[i, j] = sum_{u -> i} H[u, j]``;
    ``eps_t`` is learnable and starts from a standard normal draw, as in the official code.
    Finally ``PE[i] = sum_j H[i, j]``.

    Parameters
    ----------
    in_dims : int
        ``m``.
    hidden_dims, out_dims : int
        Width of the hidden GIN layers and of the PE (official ZINC: 128, 37).
    n_layers : int
        GIN layers (official ZINC: 8).
    mlp_layers : int
        Linear layers per GIN MLP (official: 3).
    batch_norm : bool
        BatchNorm inside the MLPs (statistics over real pairs only: there is no padding).
    """

    def __init__(
        self, in_dims: int, hidden_dims: int = 128, out_dims: int = 37, n_layers: int = 8, mlp_layers: int = 3,
        batch_norm: bool = True,
    ):
        super().__init__()
        dims = [in_dims] + [hidden_dims] * (n_layers - 1) + [out_dims]
        self.mlps = nn.ModuleList(
            MLP(a, hidden_dims, b, mlp_layers, batch_norm) for a, b in zip(dims[:-1], dims[1:])
        )
        self.eps = nn.ParameterList(nn.Parameter(torch.randn(1)) for _ in range(n_layers))
        self.out_dims = out_dims

    def _affine(self, linear: nn.Linear, norm: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None):
        """``(weight, bias, post, norm_left)``: BatchNorm folded into the map in eval mode."""
        if isinstance(norm, nn.BatchNorm1d) and not self.training and norm.track_running_stats:
            g = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
            weight = g.unsqueeze(1) * weight
            bias = None if bias is None else g * bias
            return weight, bias, g * (linear.bias - norm.running_mean) + norm.bias, None
        return weight, bias, linear.bias, norm

    def _first_map(self, mlp: MLP, weight: torch.Tensor | None, bias: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, nn.Module | None]:
        """``(w, b, post, norm)`` of ``mlp``'s first linear map composed with the pending map
        ``(weight, bias)`` of the previous layer (``None``: none), BatchNorm folded as in :meth:`_affine`."""
        first = mlp.linears[0]
        norm0 = mlp.norms[0] if len(mlp.norms) else nn.Identity()
        w, b = (first.weight, None) if weight is None else (first.weight @ weight, first.weight @ bias)
        return self._affine(first, norm0, w, b)

    def forward(self, h: torch.Tensor, layout: "PairLayout") -> torch.Tensor:
        """``h`` (P, m) pair features in ``layout``'s order -> node PE (N, out_dims).

        Evaluated in a cheaper but equal form. The last linear map of each GIN MLP is followed
        by the next layer's aggregation ``(1 + eps) H + A H`` and first linear map, all linear
        and acting on different axes, so the last and first maps are applied as one product
        ``W_first W_last`` before the aggregation (whose row sums then carry the bias
        ``W_first b_last`` correctly); the first layer aggregates its ``m`` input channels
        before widening them; the final linear map commutes with the sum over columns and runs
        on the ``N`` node rows instead of the ``P`` pair rows. In eval mode BatchNorm is folded
        into the linear maps. Without autograd on CPU, with every BatchNorm folded, it runs block
        by block of whole graphs with compiled passes (:meth:`_forward_blocked`).
        """
        fast = not torch.is_grad_enabled()
        if fast and _fused.available(h):
            folded = self._folded_layers()
            if folded is not None:
                return self._forward_blocked(h.contiguous(), layout, *folded)
        # without autograd, every (P, width) result goes to one of two reused buffers: a fresh
        # multi-megabyte tensor per product costs as much in page faults as the product itself
        out = _PingPong() if fast else None
        weight = bias = None   # a pending affine map: the true features are h @ weight.T + bias
        for mlp, eps in zip(self.mlps, self.eps):
            w, b, post, norm0 = self._first_map(mlp, weight, bias)
            if _aggregate_first(weight, w):
                x = _affine_map(layout.aggregate(h, eps, fast), w, post, out)
            else:
                y = _affine_map(h, w, b, out)
                x = layout.aggregate(y, eps, fast, None if out is None else out.other(y))
                x = x.add_(post) if fast else x + post
            last = len(mlp.linears) - 1
            if last == 0:
                h, weight, bias = x, None, None
                continue
            if norm0 is not None:
                x = norm0(x)
            x = x.relu_() if fast else torch.relu(x)
            for k in range(1, last):
                wk, _, post_k, norm_k = self._affine(mlp.linears[k], mlp.norms[k], mlp.linears[k].weight, None)
                x = _affine_map(x, wk, post_k, out)
                if norm_k is not None:
                    x = norm_k(x)
                x = x.relu_() if fast else torch.relu(x)
            h, weight, bias = x, mlp.linears[-1].weight, mlp.linears[-1].bias
        out = layout.sum_columns(h)
        if weight is not None:
            out = torch.addmm(layout.column_counts(out.dtype).unsqueeze(1) * bias, out, weight.T)
        return out

    def _folded_layers(self) -> tuple[list[_FoldedLayer], torch.Tensor | None, torch.Tensor | None] | None:
        """Every GIN layer as plain affine maps (the form :meth:`forward` evaluates), or ``None``.

        Returns ``(layers, weight, bias)``, ``(weight, bias)`` the pending last map; ``None`` when a
        BatchNorm uses batch statistics (training mode), which couple all pair rows.
        """
        layers, weight, bias = [], None, None
        for mlp, eps in zip(self.mlps, self.eps):
            w, b, post, norm0 = self._first_map(mlp, weight, bias)
            middles = []
            for k in range(1, len(mlp.linears) - 1):
                wk, _, post_k, norm_k = self._affine(mlp.linears[k], mlp.norms[k], mlp.linears[k].weight, None)
                if not isinstance(norm_k, (type(None), nn.Identity)):
                    return None
                middles.append((wk.T.contiguous(), post_k.contiguous()))
            if not isinstance(norm0, (type(None), nn.Identity)):
                return None
            relu = len(mlp.linears) > 1
            layers.append(_FoldedLayer(1.0 + float(eps), w.T.contiguous(), None if b is None else b.contiguous(),
                                       post.contiguous(), relu, _aggregate_first(weight, w), middles))
            weight, bias = (mlp.linears[-1].weight, mlp.linears[-1].bias) if relu else (None, None)
        return layers, weight, bias

    def _forward_blocked(self, h: torch.Tensor, layout: "PairLayout", layers: list[_FoldedLayer],
                         weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
        """:meth:`forward` without autograd on CPU, block by block of whole graphs, compiled passes.

        Graphs never exchange messages, so every layer runs on a block of about
        ``_BLOCK_ROWS`` pair rows (whole graphs) before the next block starts: the block's
        buffers stay in the core's L2 cache through all layers, and the ``(P, width)`` features
        never go to memory. Each product runs without a bias (``torch.mm(out=...)``); the
        aggregation, biases and ReLU between two products are one compiled pass
        (:mod:`graphrec.pe._fused`). With several intra-op threads and several blocks, the blocks
        run side by side on as many single-threaded workers, one block per core.
        """
        blocks = layout.blocks(_BLOCK_ROWS)
        sums = torch.empty(layout.n_nodes, layers[-1].out_width(), dtype=h.dtype)
        rows = max(r1 - r0 for r0, r1, *_ in blocks)
        threads = torch.get_num_threads()
        workers = min(threads, len(blocks))
        if workers > 1:   # one block per core at a time (see graphrec.utils.threads)
            runners = [_BlockRunner(h, layers, rows, sums) for _ in range(workers)]
            for_each_on_workers(lambda worker, block: runners[worker](block, 1), blocks, threads)
        else:
            runner = _BlockRunner(h, layers, rows, sums)
            for block in blocks:
                runner(block, threads)
        out = layout.from_bucket_order(sums)
        if weight is not None:
            out = torch.addmm(layout.column_counts(out.dtype).unsqueeze(1) * bias, out, weight.T)
        return out


# Pair rows per block of the compiled inference path: two (rows x 128) float32 buffers of 0.5 MB
# stay in a 2 MB L2 cache with the weights (2-core Xeon: 1024 rows ran the products at 173 GFLOP/s,
# the whole 71,469-row batch at 126).
_BLOCK_ROWS = 1024


class _FoldedLayer(NamedTuple):
    """One GIN layer as affine maps: ``act(aggregate(x W^T + b) + post)`` then ``(W_k, post_k)`` + ReLU each."""

    alpha: float                 # 1 + eps
    weight_t: torch.Tensor       # W^T (in, width)
    bias: torch.Tensor | None    # b (width,): the previous layer's last bias mapped by W
    post: torch.Tensor           # (width,)
    relu: bool                   # ReLU after post (False: a one-layer MLP, whose output is the layer's)
    narrow: bool                 # aggregate the input before the map (fewer input columns than width)
    middles: list[tuple[torch.Tensor, torch.Tensor]]   # (W_k^T, post_k)

    def out_width(self) -> int:
        return self.middles[-1][0].shape[1] if self.middles else self.weight_t.shape[1]


class _BlockRunner:
    """Runs folded GIN layers (:meth:`GINRho._folded_layers`) on one block of whole graphs at a time.

    ``runner(block, n_threads)`` reads the block's rows of ``h`` (P, m) and writes their column
    sums, the bucket-ordered node rows of the block, into ``sums`` (N, out); ``n_threads`` is
    that of the compiled passes. Each runner owns its scratch buffers (two of ``max_rows x
    width`` and one of ``max_rows x m``), so several runners can work on different blocks at once.
    """

    def __init__(self, h: torch.Tensor, layers: list[_FoldedLayer], max_rows: int, sums: torch.Tensor):
        self.h, self.layers, self.sums = h, layers, sums
        self.widths = {w.shape[1] for layer in layers for w in [layer.weight_t, *(wk for wk, _ in layer.middles)]}
        width = max(self.widths)
        buffers = [torch.empty(max_rows * width, dtype=h.dtype) for _ in range(2)]
        narrow = torch.empty(max_rows * h.shape[1], dtype=h.dtype)
        # the compiled passes get numpy views made once: thousands of small calls follow
        self.aggregate, self.bias_act = _fused.passes(h.dtype)
        self.flat = [(t, t.numpy()) for t in (*buffers, narrow)]
        dtype = self.flat[0][1].dtype
        self.vectors = [(np.zeros(layer.weight_t.shape[1], dtype=dtype) if layer.bias is None else layer.bias.numpy(),
                         layer.post.numpy(), [post_k.numpy() for _, post_k in layer.middles])
                        for layer in layers]
        self.zeros = np.zeros(h.shape[1], dtype=dtype)

    def __call__(self, block: _Block, n_threads: int) -> None:
        h, flat, aggregate, bias_act, zeros = self.h, self.flat, self.aggregate, self.bias_act, self.zeros
        r0, r1, indptr, indices, segments = block
        n, indptr, indices = r1 - r0, indptr.numpy(), indices.numpy()
        # (buffer, columns) -> that buffer as an (n, columns) tensor and its numpy view
        views = {(k, cols): (flat[k][0][: n * cols].view(n, cols), flat[k][1][: n * cols].reshape(n, cols))
                 for k, cols in [(0, w) for w in self.widths] + [(1, w) for w in self.widths] + [(2, h.shape[1])]}
        x, at = h[r0:r1], 1   # at: the buffer holding x (the input is in neither)
        for layer, (bias_np, post_np, middles_np) in zip(self.layers, self.vectors):
            cols = layer.weight_t.shape[1]
            if layer.narrow:
                a, a_np = views[2, h.shape[1]]
                aggregate(indptr, indices, x.numpy(), layer.alpha, zeros, zeros, False, a_np, n_threads)
                (x, x_np), at = views[0, cols], 0
                torch.mm(a, layer.weight_t, out=x)
                bias_act(x_np, post_np, layer.relu, n_threads)
            else:
                y, y_np = views[1 - at, cols]
                torch.mm(x, layer.weight_t, out=y)
                x, x_np = views[at, cols]
                aggregate(indptr, indices, y_np, layer.alpha, bias_np, post_np, layer.relu, x_np, n_threads)
            for (wk_t, _), post_k in zip(layer.middles, middles_np):
                (y, y_np), at = views[1 - at, wk_t.shape[1]], 1 - at
                x = torch.mm(x, wk_t, out=y)
                bias_act(y_np, post_k, True, n_threads)
        for a, b, s, node in segments:   # the block's rows, sums over columns j
            torch.sum(x[a - r0 : b - r0].view(-1, s, x.shape[1]), 1, out=self.sums[node : node + (b - a) // s])


def _aggregate_first(pending: torch.Tensor | None, w: torch.Tensor) -> bool:
    """Whether a layer aggregates its input before the map ``w``: no pending map and fewer input
    columns than outputs (the first layer's ``m`` channels)."""
    return pending is None and w.shape[1] < w.shape[0]


class _PingPong:
    """Two reusable ``(rows, width)`` buffers; ``other(x)`` is one that does not hold ``x``."""

    def __init__(self) -> None:
        self._buffers: list[torch.Tensor] = []

    def other(self, x: torch.Tensor, width: int | None = None) -> torch.Tensor:
        shape = (x.shape[0], x.shape[1] if width is None else width)
        for i, buf in enumerate(self._buffers):
            if buf.data_ptr() != x.data_ptr() and buf.numel() >= shape[0] * shape[1] and buf.dtype == x.dtype:
                self._buffers.append(self._buffers.pop(i))   # most recently used last
                return buf.view(-1)[: shape[0] * shape[1]].view(shape)
        if len(self._buffers) == 2:
            self._buffers.pop(0)
        buf = torch.empty(shape, dtype=x.dtype, device=x.device)
        self._buffers.append(buf)
        return buf


def _affine_map(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: _PingPong | None):
    """``x @ weight.T (+ bias)``, into a buffer of ``out`` when given."""
    buf = None if out is None else out.other(x, weight.shape[0])
    if bias is None:
        return torch.mm(x, weight.T, out=buf) if buf is not None else x @ weight.T
    return torch.addmm(bias, x, weight.T, out=buf) if buf is not None else torch.addmm(bias, x, weight.T)


def _csr(index: torch.Tensor, size: int, dtype: torch.dtype, row_sorted: bool = False) -> torch.Tensor:
    """A ``(size, size)`` CSR matrix of ones at ``index`` (duplicates add up in products).

    ``row_sorted``: ``index`` is already in row order (columns in any order within a row).
    """
    if row_sorted:
        rows, cols = index[0], index[1]
    else:
        order = torch.argsort(index[0] * size + index[1])
        rows, cols = index[0, order], index[1, order]
    crow = torch.zeros(size + 1, dtype=torch.long, device=index.device)
    crow[1:] = torch.bincount(rows, minlength=size).cumsum(0)
    values = torch.ones(len(cols), dtype=dtype, device=index.device)
    return sparse_csr_tensor(crow, cols, values, (size, size))


class _Propagate(torch.autograd.Function):
    """``S @ h`` with the backward ``S^T @ grad`` from a transposed copy built once per layout."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, layout: "PairLayout") -> torch.Tensor:
        ctx.layout = layout
        return layout.propagator @ h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.layout.propagator_t() @ grad, None


# --------------------------------------------------------------------------------------------
# The pair layout: graphs grouped by size, no padding, one sparse propagation matrix
# --------------------------------------------------------------------------------------------
# a block of whole graphs: rows [r0, r1), block-local CSR (indptr, indices), column-sum segments
_Block = tuple[int, int, torch.Tensor, torch.Tensor, list[tuple[int, int, int, int]]]


class PairLayout:
    """Where every ``(graph, i, j)`` pair lives in the flat ``(P, c)`` pair matrix, ``P = sum n_g^2``.

    Graphs are grouped by size ``s`` (buckets in ascending size); inside a bucket, rows are
    ``(graph, i, j)`` in C order over ``(B_s, s, s)``. No graph is padded. The propagation
    ``(A H)[(g, i, j)] = sum_{u -> i} H[(g, u, j)]`` is one sparse ``(P, P)`` matrix with
    ``sum_g E_g n_g`` entries.
    """

    def __init__(self, sizes: list[int], ptr: torch.Tensor, edge_index: torch.Tensor, device: torch.device,
                 dtype: torch.dtype) -> None:
        self.n_nodes = int(ptr[-1])
        n_graphs = len(sizes)
        size_of = torch.tensor(sizes, dtype=torch.long, device=device)
        self.buckets: list[tuple[int, torch.Tensor, int]] = []   # (s, graph ids, first pair row)
        pair_offset = torch.zeros(n_graphs, dtype=torch.long, device=device)
        order, start = [], 0
        for s in sorted(set(sizes) - {0}):
            graphs = torch.tensor([g for g in range(n_graphs) if sizes[g] == s], device=device)
            self.buckets.append((s, graphs, start))
            pair_offset[graphs] = start + s * s * torch.arange(len(graphs), device=device)
            order.append((ptr[graphs].unsqueeze(1) + torch.arange(s, device=device)).reshape(-1))
            start += len(graphs) * s * s
        self.n_pairs = start
        # node v of the batch is row position[v] of the bucket-ordered node list
        bucket_nodes = torch.cat(order) if order else torch.zeros(0, dtype=torch.long, device=device)
        self._position = torch.empty_like(bucket_nodes)
        self._position[bucket_nodes] = torch.arange(len(bucket_nodes), device=device)
        counts = ptr.diff()
        self._node_graph_size = counts.repeat_interleave(counts)
        self.propagator = self._propagator(edge_index, ptr, size_of, pair_offset, dtype)

    def _propagator(self, edge_index, ptr, size_of, pair_offset, dtype) -> torch.Tensor:
        device = edge_index.device
        if edge_index.numel() == 0:
            index = torch.zeros(2, 0, dtype=torch.long, device=device)
        else:
            # edge u -> i of graph g (size n) gives the entries ((g, i, j), (g, u, j)) for every j, made here
            # directly in row order (no sort of the sum_g E_g n_g entries): edges sorted by their row
            # (g, i, 0), and the k edges into one node i placed at group start + j k + (edge's place)
            graph = torch.bucketize(edge_index[0], ptr[1:], right=True)
            n = size_of[graph]
            row0 = pair_offset[graph] + (edge_index[1] - ptr[graph]) * n
            col0 = pair_offset[graph] + (edge_index[0] - ptr[graph]) * n
            order = torch.argsort(row0, stable=True)
            row0, col0, n = row0[order], col0[order], n[order]
            first = torch.ones(len(row0), dtype=torch.bool, device=device)
            first[1:] = row0[1:] != row0[:-1]
            group = first.cumsum(0) - 1
            group_edge = first.nonzero().squeeze(1)                  # first edge of each group
            k = torch.bincount(group)[group]                          # edges in the edge's group
            place = torch.arange(len(row0), device=device) - group_edge[group]
            entry_start = n.cumsum(0) - n                            # entries of the edges before
            rep = torch.repeat_interleave(torch.arange(len(n), device=device), n)
            j = torch.arange(len(rep), device=device) - entry_start[rep]
            position = entry_start[group_edge[group]][rep] + j * k[rep] + place[rep]
            index = torch.empty(2, len(rep), dtype=torch.long, device=device)
            index[0, position] = row0[rep] + j
            index[1, position] = col0[rep] + j
        self._index, self._dtype = index, dtype
        self._transposed: torch.Tensor | None = None
        self._blocks: dict[int, list[_Block]] = {}
        return _csr(index, self.n_pairs, dtype, row_sorted=True)

    def propagator_t(self) -> torch.Tensor:
        """The transposed propagation matrix (built on first use, for backward passes)."""
        if self._transposed is None:
            self._transposed = _csr(self._index.flip(0), self.n_pairs, self._dtype)
        return self._transposed

    def pairs(self, eigvecs: torch.Tensor, z: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        """``W[(g, i, j), l] = sum_k V[i, k] z[g, k, l] V[j, k]`` as a (P, m) matrix."""
        parts = []
        for s, graphs, _ in self.buckets:
            v = eigvecs[ptr[graphs].unsqueeze(1) + torch.arange(s, device=eigvecs.device)]   # (B_s, s, d)
            w = torch.einsum("bik,bkl,bjk->bijl", v, z[graphs], v)                            # (B_s, s, s, m)
            parts.append(w.reshape(-1, w.shape[-1]))
        return torch.cat(parts)

    def aggregate(self, h: torch.Tensor, eps: torch.Tensor, fast: bool, out: torch.Tensor | None = None) -> torch.Tensor:
        """``(1 + eps) H + A H`` (``fast``: one fused sparse op, no autograd, into ``out`` if given)."""
        if fast:
            if out is None:
                return torch.sparse.addmm(h, self.propagator, h, beta=1.0 + float(eps))
            return torch.addmm(h, self.propagator, h, beta=1.0 + float(eps), out=out)
        return (1 + eps) * h + _Propagate.apply(h, self)

    def sum_columns(self, h: torch.Tensor) -> torch.Tensor:
        """Node PE ``PE[(g, i)] = sum_j H[(g, i, j)]`` in the batch's node order, (N, c)."""
        c = h.shape[1]
        parts = [h[start : start + len(graphs) * s * s].reshape(-1, s, c).sum(1) for s, graphs, start in self.buckets]
        return self.from_bucket_order(torch.cat(parts))

    def from_bucket_order(self, x: torch.Tensor) -> torch.Tensor:
        """Node rows in bucket order (graphs grouped by size, as the pair rows) -> the batch's node order."""
        return x[self._position]

    def blocks(self, max_rows: int) -> list[_Block]:
        """The pair rows cut into blocks of whole graphs, about ``max_rows`` rows each (cached).

        Each block is ``(r0, r1, indptr, indices, segments)``: rows ``[r0, r1)``, the propagator
        restricted to them as a CSR structure of block-local ids (messages never leave a graph),
        and ``segments`` ``(a, b, s, node)``: rows ``[a, b)`` of graphs of size ``s`` whose column
        sums are the bucket-ordered node rows from ``node`` on. A graph larger than
        ``max_rows`` rows is a block of its own.
        """
        if max_rows not in self._blocks:
            bounds, segments, node = [], [], 0   # bounds: block ends; segments: per block
            r0 = r1 = 0
            for s, graphs, start in self.buckets:
                for k in range(len(graphs)):
                    a = start + k * s * s
                    if a + s * s - r0 > max_rows and a > r0:   # close the block before this graph
                        bounds.append((r0, a))
                        r0 = a
                    if not segments or segments[-1][0] != len(bounds) or segments[-1][3] != s:
                        segments.append([len(bounds), a, a, s, node])
                    segments[-1][2] = r1 = a + s * s
                    node += s
            if r1 > r0:
                bounds.append((r0, r1))
            crow, col = self.propagator.crow_indices(), self.propagator.col_indices()
            blocks = [
                (r0, r1, crow[r0 : r1 + 1] - crow[r0], col[crow[r0] : crow[r1]] - r0,
                 [(a, b, s, n) for t, a, b, s, n in segments if t == i])
                for i, (r0, r1) in enumerate(bounds)
            ]
            self._blocks[max_rows] = blocks
        return self._blocks[max_rows]

    def column_counts(self, dtype: torch.dtype) -> torch.Tensor:
        """(N,) number of columns ``n_g`` summed for each node."""
        return self._node_graph_size.to(dtype)


class ColumnLayout(PairLayout):
    """One graph, only the columns ``j`` in ``columns``: rows ``(i, j)``, ``P = n * len(columns)``.

    Columns are independent in ``rho`` (messages run along ``i``), so the PE is the sum of the
    outputs over any partition of the columns; this bounds memory on large graphs.
    """

    def __init__(self, n: int, edge_index: torch.Tensor, columns: torch.Tensor, dtype: torch.dtype) -> None:
        device = columns.device
        self.n_nodes, self.columns = n, columns
        c = len(columns)
        self.n_pairs = n * c
        j = torch.arange(c, device=device)
        src, dst = edge_index[0].repeat_interleave(c), edge_index[1].repeat_interleave(c)
        jj = j.repeat(edge_index.shape[1])
        index = torch.stack([dst * c + jj, src * c + jj])
        self._index, self._dtype, self._transposed = index, dtype, None
        self.propagator = _csr(index, self.n_pairs, dtype)
        crow, col = self.propagator.crow_indices(), self.propagator.col_indices()
        self._block = (0, self.n_pairs, crow, col, [(0, self.n_pairs, c, 0)])

    def blocks(self, max_rows: int) -> list[_Block]:
        """One block of all rows (every row ``(i, j)`` may receive messages from any ``(u, j)``)."""
        return [self._block]

    def from_bucket_order(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def pairs(self, eigvecs: torch.Tensor, z: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        w = torch.einsum("ik,kl,jk->ijl", eigvecs, z[0], eigvecs[self.columns])
        return w.reshape(-1, w.shape[-1])

    def sum_columns(self, h: torch.Tensor) -> torch.Tensor:
        return h.reshape(self.n_nodes, len(self.columns), h.shape[1]).sum(1)

    def column_counts(self, dtype: torch.dtype) -> torch.Tensor:
        return torch.full((self.n_nodes,), float(len(self.columns)), dtype=dtype, device=self.columns.device)


# --------------------------------------------------------------------------------------------
# SPE
# --------------------------------------------------------------------------------------------
class SPE(nn.Module):
    """Stable and expressive positional encoding ``rho(V diag(phi_1(lambda)) V^T, ...)``.

    Parameters
    ----------
    phi : nn.Module
        Eigenvalue functions: ``phi(eigvals (R,), graph (R,), n_graphs) -> (R, m)``, e.g.
        :class:`ElementwisePhi` or :class:`DeepSetsPhi`.
    rho : GINRho
        Outer network over the ``n x n x m`` tensor; its ``out_dims`` is the PE width.

    Examples
    --------
    >>> import torch
    >>> from graphrec.pe import SPE, ElementwisePhi, GINRho, laplacian_eigenpairs
    >>> _ = torch.manual_seed(0)
    >>> spe = SPE(ElementwisePhi(n_phis=4, hidden_dims=8), GINRho(4, hidden_dims=16, out_dims=3, n_layers=2))
    >>> ring = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    >>> lam, V, mask = laplacian_eigenpairs(ring, 4, d=4)
    >>> spe(lam[None], V, mask[None], ring).shape
    torch.Size([4, 3])
    """

    def __init__(self, phi: nn.Module, rho: GINRho):
        super().__init__()
        self.phi = phi
        self.rho = rho

    @property
    def out_dims(self) -> int:
        return self.rho.out_dims

    def forward(
        self,
        eigvals: torch.Tensor,
        eigvecs: torch.Tensor,
        eig_mask: torch.Tensor | None,
        edge_index: torch.Tensor,
        batch: torch.Tensor | None = None,
        columns: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Node PEs of a batch of graphs.

        Parameters
        ----------
        eigvals : Tensor, shape (B, d)
            Eigenvalues per graph (padded).
        eigvecs : Tensor, shape (N_sum, d)
            Eigenvectors, rows of graph ``b`` contiguous and in batch order (padded columns 0).
        eig_mask : BoolTensor, shape (B, d), optional
            Real eigenpairs (default: all).
        edge_index : LongTensor, shape (2, E_sum)
            Batch-global node ids.
        batch : LongTensor, shape (N_sum,), optional
            Graph id of each node, non-decreasing (default: one graph).
        columns : LongTensor, optional
            One graph only: sum over these columns ``j`` instead of all (the PE is the sum of
            the results over a partition of the columns: chunking for large graphs).

        Returns
        -------
        Tensor, shape (N_sum, rho.out_dims)
        """
        lam, vecs, mask, ptr, sizes = self._check(eigvals, eigvecs, eig_mask, edge_index, batch)
        n_graphs, d = lam.shape
        if vecs.shape[0] == 0:
            return torch.zeros(0, self.out_dims, dtype=vecs.dtype, device=vecs.device)
        graph_of = torch.arange(n_graphs, device=lam.device).unsqueeze(1).expand(-1, d)[mask]
        z_real = self.phi(lam[mask], graph_of, n_graphs)                                   # (R, m)
        z = torch.zeros(n_graphs, d, z_real.shape[1], dtype=z_real.dtype, device=z_real.device)
        z = z.index_put(tuple(mask.nonzero().T), z_real)                                   # (B, d, m)
        vecs = vecs * mask.to(vecs.dtype).repeat_interleave(ptr.diff(), dim=0)
        if columns is None:
            layout = PairLayout(sizes, ptr, edge_index, vecs.device, vecs.dtype)
        else:
            if n_graphs != 1:
                raise ValueError(f"columns needs a single graph, got {n_graphs}")
            columns = torch.as_tensor(columns, dtype=torch.long, device=vecs.device)
            if columns.dim() != 1 or columns.numel() == 0 or int(columns.min()) < 0 or int(columns.max()) >= sizes[0]:
                raise ValueError(f"columns must be a non-empty 1-d set of node ids in [0, {sizes[0]})")
            layout = ColumnLayout(sizes[0], edge_index, columns, vecs.dtype)
        return self.rho(layout.pairs(vecs, z, ptr), layout)

    @staticmethod
    def _check(eigvals, eigvecs, eig_mask, edge_index, batch):
        for name, t in (("eigvals", eigvals), ("eigvecs", eigvecs), ("edge_index", edge_index)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if eigvals.dim() != 2 or eigvecs.dim() != 2 or eigvals.shape[1] != eigvecs.shape[1]:
            raise ValueError(
                f"eigvals must be (B, d) and eigvecs (N_sum, d) with the same d, got {tuple(eigvals.shape)} "
                f"and {tuple(eigvecs.shape)}"
            )
        if not eigvecs.is_floating_point() or not torch.isfinite(eigvecs).all() or not torch.isfinite(eigvals).all():
            raise ValueError("eigvals and eigvecs must be finite floating-point tensors")
        n_graphs = eigvals.shape[0]
        mask = torch.ones_like(eigvals, dtype=torch.bool) if eig_mask is None else eig_mask
        if mask.shape != eigvals.shape or mask.dtype != torch.bool:
            raise ValueError(
                f"eig_mask must be a bool tensor of shape {tuple(eigvals.shape)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        n = eigvecs.shape[0]
        if batch is None:
            if n_graphs != 1:
                raise ValueError(f"batch is needed for {n_graphs} graphs (eigvals has {n_graphs} rows)")
            batch = torch.zeros(n, dtype=torch.long, device=eigvecs.device)
        if batch.shape != (n,):
            raise ValueError(f"batch must have shape ({n},), got {tuple(batch.shape)}")
        if n and (int(batch.min()) < 0 or int(batch.max()) >= n_graphs or bool((batch[1:] < batch[:-1]).any())):
            raise ValueError(f"batch must be non-decreasing graph ids in [0, {n_graphs}) (nodes of a graph contiguous)")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"edge_index holds node ids outside [0, {n})")
        counts = torch.bincount(batch, minlength=n_graphs)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        if edge_index.numel():
            gs, gt = torch.bucketize(edge_index.contiguous(), ptr[1:], right=True)
            if bool((gs != gt).any()):
                raise ValueError("edge_index links nodes of different graphs")
        return eigvals.to(eigvecs.dtype), eigvecs, mask, ptr, counts.tolist()
