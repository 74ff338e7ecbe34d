"""Seeded synthetic data with planted structure, one generator per container kind.

Each generator takes ``random_state`` (int, numpy ``Generator`` or ``None``), is deterministic for a
seed, validates its arguments and returns the typed containers of :mod:`graphrec.datasets`:

* :func:`make_attributed_sbm` -> ``AttributedGraph`` (contextual stochastic block model);
* :func:`make_latent_factor_interactions` -> ``Interactions`` (latent factors + popularity);
* :func:`make_knowledge_graph` -> ``Triples`` (planted bilinear relations);
* :func:`make_ctr` -> ``CTRTable`` (logistic clicks over planted informative fields);
* :func:`make_continuous_tensor` -> ``ContinuousTensor`` (low-rank smooth functions);
* :func:`make_union_of_subspaces` -> ``(X, labels)`` arrays (points on a union of linear subspaces);
* :func:`make_slow_manifold` -> trajectories ``(n, T, 2)`` (a nonlinear system with a planted Koopman spectrum).
"""
from graphrec.datasets.generators.ctr import make_ctr
from graphrec.datasets.generators.dynamics import make_slow_manifold
from graphrec.datasets.generators.graph import make_attributed_sbm
from graphrec.datasets.generators.interactions import make_latent_factor_interactions
from graphrec.datasets.generators.kg import make_knowledge_graph
from graphrec.datasets.generators.subspaces import make_union_of_subspaces
from graphrec.datasets.generators.tensor import LowRankFunction, SinusoidFunctions, make_continuous_tensor

__all__ = [
    "LowRankFunction",
    "SinusoidFunctions",
    "make_attributed_sbm",
    "make_continuous_tensor",
    "make_ctr",
    "make_knowledge_graph",
    "make_latent_factor_interactions",
    "make_slow_manifold",
    "make_union_of_subspaces",
]
