"""Quality numbers for CoSO, λ-orthogonality and sHC at small scale.

    OMP_NUM_THREADS=1 python benchmarks/bench_adapters_continual.py > benchmarks/results/adapters_continual.md
"""
import math
import sys
import torch
from torch import nn
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests import test_adapters_continual as T

torch.set_num_threads(1)
print("## CoSO, split digits (5 tasks x 2 classes, 2-layer MLP 64-64-64, task heads, 60 full-batch steps/task)")
print("| optimiser | final avg acc | avg forgetting |\n|---|---|---|")
for label, method, side in [("CoSO side=right", "coso", "right"), ("CoSO side=left", "coso", "left"), ("Adam (fine-tuning)", "adam", "right")]:
    final, forget = T._split_digits_run(method, side=side)
    print(f"| {label} | {final:.3f} | {forget:.3f} |")

print("\n## λ-orthogonality, generated compatibility task (test_lambda_orth_is_compatible_and_preserves_the_new_geometry)")
g = torch.Generator().manual_seed(0)
F64, d = T.F64, 16
s = torch.ones(d, dtype=F64); s[:4], s[4:8] = 0.3, 2.0
q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))
def sample(means, n):
    labels = torch.arange(n) % means.shape[0]
    return means[labels] + 0.7 * torch.randn(n, d, generator=g, dtype=F64), labels
down_means = 0.8 * torch.randn(8, d, generator=g, dtype=F64)
other_means = torch.zeros(8, d, dtype=F64); other_means[:, :4] = 1.5 * torch.randn(8, 4, generator=g, dtype=F64)
to_old = lambda z: (z * s) @ q.T + 0.3 * torch.randn(z.shape, generator=g, dtype=F64)
z_train, _ = sample(down_means, 400); old_train = to_old(z_train)
z_test, test_labels = sample(down_means, 400); old_test = to_old(z_test)
z_other, other_labels = sample(other_means, 400)
def nn1(query, gallery, labels):
    dist = torch.cdist(query, gallery); dist.fill_diagonal_(float("inf"))
    return float((labels[dist.argmin(1)] == labels).double().mean())
print(f"new model's own 1-NN on the other distribution: {nn1(z_other, z_other, other_labels):.3f}; old-old 1-NN: {nn1(old_test, old_test, test_labels):.3f}")
print("| map | lam | mu | defect ||W^T W - I|| | held-out align MSE | cross-model 1-NN (new->old) | other-distribution 1-NN |\n|---|---|---|---|---|---|---|")
for name, lam, mu in [("orthogonal", 0.0, math.inf), ("λ-orth", 0.1, 10.0), ("λ-orth", 0.3, 10.0), ("λ-orth", 1.0, 10.0), ("affine", math.inf, 0.0)]:
    torch.manual_seed(0)
    layer = T._fit_map(T.LambdaOrthogonalLinear(nn.Linear(d, d).double(), lam=lam, mu=mu), z_train, old_train)
    with torch.no_grad():
        h = layer(z_test)
        print(f"| {name} | {lam} | {mu} | {float(layer.orthogonality_defect()):.3f} | {float(((h - old_test) ** 2).sum(1).mean()):.3f} | "
              f"{nn1(h, old_test, test_labels):.3f} | {nn1(layer(z_other), layer(z_other), other_labels):.3f} |")

print("\n## sHC vs HC, depth-64 stack, 4 streams, d=16, raw H_res = I + 0.3 N (same noise for both)")
print("| depth | constraint | ||prod H_res||_2 | ||dL/dx|| | ||dL/dx|| at identity init |\n|---|---|---|---|---|")
for depth in (8, 32, 64):
    for constraint in ("spectral_sphere", "none"):
        row = []
        for noisy in (True, False):
            gg = torch.Generator().manual_seed(1)
            stack = T.HyperConnectedStack(T._blocks(depth), 4, constraint=constraint)
            if noisy:
                with torch.no_grad():
                    for layer in stack.layers:
                        T._raw_h_res(layer).add_(0.3 * torch.randn(4, 4, generator=gg))
            x = torch.randn(8, 16, generator=torch.Generator().manual_seed(2), requires_grad=True)
            stack(x).square().sum().backward()
            prod = torch.eye(4)
            for layer in stack.layers:
                prod = layer.h_res.detach() @ prod
            row.append((float(torch.linalg.matrix_norm(prod, ord=2)), float(x.grad.norm())))
        print(f"| {depth} | {constraint} | {row[0][0]:.3g} | {row[0][1]:.3g} | {row[1][1]:.3g} |")
