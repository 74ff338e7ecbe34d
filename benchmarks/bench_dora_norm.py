"""Factored vs dense DoRA row norm on CPU: time (median of 5) and the largest tensor allocated.

    python benchmarks/bench_dora_norm.py

The factored norm (``graphrec.adapters.dora_row_norm``) never forms the ``d_out x d_in`` update
``B A``; a ``TorchDispatchMode`` probe records the largest tensor each variant allocates (views excluded).
"""
import time, torch
from torch.utils._python_dispatch import TorchDispatchMode
from graphrec.adapters import dora_row_norm

class MaxNumel(TorchDispatchMode):
    def __init__(self):
        super().__init__(); self.largest = 0
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        ins = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in ins:
                self.largest = max(self.largest, t.numel())
        return out

torch.set_num_threads(2)
for d, r in [(1024, 64), (4096, 384)]:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(d, d, generator=g); a = torch.randn(r, d, generator=g) / d**0.5; b = torch.randn(d, r, generator=g) / r**0.5
    base_sq = (w * w).sum(1)
    fns = {"factored": lambda: dora_row_norm(w, a, b, 0.5, base_sq),
           "dense": lambda: torch.linalg.vector_norm(w + 0.5 * (b @ a), dim=1)}
    res = {}
    for name, fn in fns.items():
        fn(); ts = []
        for _ in range(5):
            t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
        with MaxNumel() as m: fn()
        res[name] = (sorted(ts)[2], m.largest)
    err = float(((fns["factored"]() - fns["dense"]()) / fns["dense"]()).abs().max())
    print(f"d_out=d_in={d} r={r} fp32: factored {res['factored'][0]*1e3:.1f} ms (largest alloc {res['factored'][1]*4/2**20:.2f} MiB), "
          f"dense {res['dense'][0]*1e3:.1f} ms (largest alloc {res['dense'][1]*4/2**20:.2f} MiB), speed-up x{res['dense'][0]/res['factored'][0]:.2f}, max rel diff {err:.1e}")
