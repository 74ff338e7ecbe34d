"""DistributedTrainer: two gloo processes on 127.0.0.1 train to the same weights as one process."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from graphrec.train import Trainer, tensor_batches
from graphrec.train.distributed import DistributedTrainer, init_process_group, shard_batch

N_ROWS, BATCH = 63, 10  # the last batch has 3 rows: shards of 2 and 1


@contextlib.contextmanager
def _process_group(rank: int, world: int, store: str):
    """A gloo group on a file store, which the ranks leave together.

    Once in CI a rank aborted at exit ("terminate called without an active exception") with a
    TCP store, which lives in rank 0's process, and no closing barrier. A file store outlives
    every rank, and the barrier keeps a rank from closing its connections while another is
    still in a collective.
    """
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _spawn(worker, world: int, out, *args) -> None:
    store = Path(out) / f"store-{worker.__name__}-{world}"
    mp.spawn(worker, args=(world, str(store), str(out), *args), nprocs=world, join=True)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_ROWS, 5, generator=gen, dtype=torch.float64)
    y = x @ torch.arange(1.0, 6.0, dtype=torch.float64)[:, None] + 0.1 * torch.randn(N_ROWS, 1, generator=gen,
                                                                                       dtype=torch.float64)
    return x, y


def _train(trainer_cls, init_seed: int, checkpoint_dir=None):
    x, y = _data()
    torch.manual_seed(init_seed)
    model = torch.nn.Linear(5, 1).double()
    trainer = trainer_cls(
        model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5),
        lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
        max_epochs=4, eval_fn=lambda m: {"mse": float(torch.nn.functional.mse_loss(m(x), y))},
        monitor="mse", mode="min", checkpoint_dir=checkpoint_dir, random_state=3, verbose=False,
    )
    result = trainer.fit(lambda epoch, g: tensor_batches(x, y, batch_size=BATCH, generator=g))
    return model, result


def _worker(rank: int, world: int, store: str, out: str) -> None:
    with _process_group(rank, world, store):
        # Rank 1 starts from different weights: the trainer must broadcast rank 0's.
        model, result = _train(DistributedTrainer, init_seed=0 if rank == 0 else 99, checkpoint_dir=f"{out}/ckpt")
        torch.save({"state": model.state_dict(), "history": result.history, "best": result.best_epoch},
                   f"{out}/rank{rank}.pt")


def test_two_processes_match_one(tmp_path):
    _spawn(_worker, 2, tmp_path)
    single, single_result = _train(Trainer, init_seed=0)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        for key, value in single.state_dict().items():
            torch.testing.assert_close(got["state"][key], value, rtol=1e-10, atol=1e-12)
        assert got["best"] == single_result.best_epoch
        for a, b in zip(got["history"], single_result.history):
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)
            assert a["mse"] == pytest.approx(b["mse"], rel=1e-10)
    assert (tmp_path / "ckpt" / "last.pt").exists()  # written by rank 0


def test_shard_batch_splits_rows_and_checks_them():
    x = torch.arange(7)
    shards = [shard_batch({"a": x, "b": (x * 2,)}, r, 3) for r in range(3)]
    assert [s[1] for s in shards] == [3, 2, 2] and all(s[2] == 7 for s in shards)
    assert torch.cat([s[0]["a"] for s in shards]).tolist() == x.tolist()
    assert shards[2][0]["b"][0].tolist() == [10, 12]
    assert shard_batch(torch.arange(1), 1, 2)[1] == 0  # fewer rows than ranks: an empty shard
    with pytest.raises(ValueError, match="same number of rows"):
        shard_batch((torch.zeros(3), torch.zeros(4)), 0, 2)
    with pytest.raises(ValueError, match="rank"):
        shard_batch(x, 2, 2)
    with pytest.raises(ValueError, match="no tensor"):
        shard_batch([1, 2], 0, 2)


def test_needs_a_process_group(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_process_group()
    model = torch.nn.Linear(2, 1)
    with pytest.raises(RuntimeError, match="process group"):
        DistributedTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m, b: m(b).sum(), max_epochs=1)


def _kg_worker(rank: int, world: int, store: str, out: str) -> None:
    from graphrec.datasets import make_knowledge_graph
    from graphrec.kg import LowFER

    torch.set_num_threads(1)
    with _process_group(rank, world, store):
        kg = make_knowledge_graph(n_entities=60, n_relations=4, n_triples=900, random_state=0)
        est = LowFER(d_e=16, d_r=8, k=4, max_epochs=15, eval_every=5, lr=0.01, random_state=0,
                     distributed=True).fit(kg)
        torch.save({"state": est.net_.state_dict(), "mrr": est.evaluate(kg, "test")["mrr"]}, f"{out}/kg{rank}.pt")


def test_lowfer_trains_on_two_processes(tmp_path):
    from graphrec.datasets import make_knowledge_graph
    from graphrec.kg import LowFER

    _spawn(_kg_worker, 2, tmp_path)
    ranks = [torch.load(tmp_path / f"kg{r}.pt") for r in range(2)]
    for key, value in ranks[0]["state"].items():  # gradients were shared: both ranks hold one model
        torch.testing.assert_close(ranks[1]["state"][key], value)
    kg = make_knowledge_graph(n_entities=60, n_relations=4, n_triples=900, random_state=0)
    single = LowFER(d_e=16, d_r=8, k=4, max_epochs=15, eval_every=5, lr=0.01, random_state=0).fit(kg)
    # Batch-norm statistics are per rank, so the runs differ a little, not in quality.
    assert ranks[0]["mrr"] == pytest.approx(single.evaluate(kg, "test")["mrr"], abs=0.05)


def _kg_small_last_batch_worker(rank: int, world: int, store: str, out: str, batch_size: int) -> None:
    from graphrec.datasets import make_knowledge_graph
    from graphrec.kg import LowFER

    torch.set_num_threads(1)
    with _process_group(rank, world, store):
        kg = make_knowledge_graph(n_entities=60, n_relations=4, n_triples=900, random_state=0)
        est = LowFER(d_e=8, d_r=4, k=2, max_epochs=1, batch_size=batch_size, random_state=0, distributed=True)
        torch.save({"epochs": est.fit(kg).n_epochs_}, f"{out}/small{rank}.pt")


def test_lowfer_on_two_processes_with_a_last_batch_of_three_queries(tmp_path):
    """3 queries left over would give one rank a single query, which batch norm cannot train on."""
    from graphrec.datasets import make_knowledge_graph
    from graphrec.kg.data import group_queries, reciprocal

    kg = make_knowledge_graph(n_entities=60, n_relations=4, n_triples=900, random_state=0)
    n_queries = len(group_queries(reciprocal(kg.train, kg.n_relations), 2 * kg.n_relations).queries)
    batch_size = next(b for b in range(4, n_queries) if n_queries % b == 3)
    _spawn(_kg_small_last_batch_worker, 2, tmp_path, batch_size)
    assert [torch.load(tmp_path / f"small{r}.pt")["epochs"] for r in range(2)] == [1, 1]


def test_shard_label_batch_partitions_queries_and_positives():
    from graphrec.kg.data import shard_label_batch

    subjects, relations = torch.arange(5), torch.arange(5) + 10
    rows, cols = torch.tensor([0, 0, 1, 2, 3, 4, 4]), torch.tensor([7, 8, 9, 1, 2, 3, 4])
    shards = [shard_label_batch((subjects, relations, rows, cols), r, 2) for r in range(2)]
    assert [s[1] for s in shards] == [3, 2] and shards[0][2] == 5
    (s0, r0, rows0, cols0), (s1, r1, rows1, cols1) = shards[0][0], shards[1][0]
    assert s0.tolist() == [0, 1, 2] and r0.tolist() == [10, 11, 12] and s1.tolist() == [3, 4] and r1.tolist() == [13, 14]
    assert rows0.tolist() == [0, 0, 1, 2] and cols0.tolist() == [7, 8, 9, 1]
    assert rows1.tolist() == [0, 1, 1] and cols1.tolist() == [2, 3, 4]


def _recsys_worker(rank: int, world: int, store: str, out: str, encoder: str) -> None:
    from graphrec.datasets import make_latent_factor_interactions
    from graphrec.recsys import DirectAU

    torch.set_num_threads(1)
    with _process_group(rank, world, store):
        data = make_latent_factor_interactions(n_users=80, n_items=50, mean_interactions=8, random_state=0)
        est = DirectAU(encoder=encoder, factors=8, batch_size=61, epochs=3, random_state=0, distributed=True)
        est.fit(data.user_items)
        torch.save({"u": est.user_factors_, "i": est.item_factors_,
                    "loss": [h["train_loss"] for h in est.train_result_.history]}, f"{out}/recsys{rank}.pt")


@pytest.mark.parametrize("encoder", ["mf", "lightgcn"])
def test_directau_on_two_processes_follows_one(tmp_path, encoder):
    """Uniformity over the gathered batch: 2 ranks train the same factors as 1 process."""
    import numpy as np

    from graphrec.datasets import make_latent_factor_interactions
    from graphrec.recsys import DirectAU

    _spawn(_recsys_worker, 2, tmp_path, encoder)
    data = make_latent_factor_interactions(n_users=80, n_items=50, mean_interactions=8, random_state=0)
    single = DirectAU(encoder=encoder, factors=8, batch_size=61, epochs=3, random_state=0).fit(data.user_items)
    assert data.user_items.nnz % 61 > 1  # a ragged last batch is part of the check
    for rank in range(2):
        got = torch.load(tmp_path / f"recsys{rank}.pt", weights_only=False)
        np.testing.assert_allclose(got["u"], single.user_factors_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["i"], single.item_factors_, rtol=1e-4, atol=1e-5)
        assert got["loss"] == pytest.approx([h["train_loss"] for h in single.train_result_.history], rel=1e-5)
    moved = np.abs(single.user_factors_ - DirectAU(encoder=encoder, factors=8, batch_size=61, epochs=1,
                                                    random_state=0).fit(data.user_items).user_factors_).max()
    assert moved > 1e-3  # training changed the factors, so equality above is not trivial


def _sharded_worker(rank: int, world: int, store: str, out: str) -> None:
    from graphrec.train.sharded_embedding import ShardedEmbedding

    with _process_group(rank, world, store):
        table = ShardedEmbedding(10_000, 3, random_state=5, dtype=torch.float64)
        full = table.full_weight()
        ids = torch.tensor([9_999, 0, 4_100, 4_100, 7]) if rank == 0 else torch.tensor([5_000, 1])
        rows = table(ids)
        coef = torch.arange(1.0, 1.0 + 3 * ids.shape[0], dtype=torch.float64).reshape(-1, 3)
        (rows * coef).sum().backward()
        errors = []
        for bad in (torch.tensor([10_000]), torch.tensor([0.5])):
            try:
                table(bad if rank == 0 else torch.tensor([0]))
            except (ValueError, TypeError) as exc:
                errors.append(type(exc).__name__)
        torch.save({"full": full, "rows": rows.detach(), "ids": ids, "coef": coef, "grad": table.weight.grad,
                    "start": table.start, "stop": table.stop, "errors": errors}, f"{out}/sharded{rank}.pt")


def test_sharded_embedding_lookups_and_gradients_match_a_dense_table(tmp_path):
    _spawn(_sharded_worker, 2, tmp_path)
    got = [torch.load(tmp_path / f"sharded{r}.pt", weights_only=False) for r in range(2)]
    assert (got[0]["start"], got[0]["stop"], got[1]["start"], got[1]["stop"]) == (0, 5000, 5000, 10_000)
    torch.testing.assert_close(got[0]["full"], got[1]["full"], rtol=0, atol=0)
    full = got[0]["full"]
    assert full.shape == (10_000, 3) and abs(float(full.std()) - (2 / 10_003) ** 0.5) < 2e-3  # xavier-normal scale
    dense_grad = torch.zeros_like(full)
    for g in got:
        torch.testing.assert_close(g["rows"], full[g["ids"]], rtol=0, atol=0)
        dense_grad.index_add_(0, g["ids"], g["coef"])  # d/dW of sum(W[ids] * coef)
    torch.testing.assert_close(torch.cat([got[0]["grad"], got[1]["grad"]]), dense_grad)
    assert got[0]["errors"] == got[1]["errors"] == ["ValueError", "TypeError"]  # raised on every rank


def _sharded_directau_worker(rank: int, world: int, store: str, out: str) -> None:
    from graphrec.datasets import make_latent_factor_interactions
    from graphrec.recsys import DirectAU

    torch.set_num_threads(1)
    with _process_group(rank, world, store):
        data = make_latent_factor_interactions(n_users=80, n_items=50, mean_interactions=8, random_state=0)
        est = DirectAU(factors=8, batch_size=61, epochs=3, random_state=0, distributed=True,
                       shard_embeddings=True).fit(data.user_items)
        torch.save({"u": est.user_factors_, "i": est.item_factors_}, f"{out}/{world}_{rank}.pt")


def test_sharded_directau_gives_the_same_factors_at_any_world_size(tmp_path):
    import numpy as np

    _spawn(_sharded_directau_worker, 1, tmp_path)
    _spawn(_sharded_directau_worker, 2, tmp_path)
    one = torch.load(tmp_path / "1_0.pt", weights_only=False)
    for rank in range(2):
        two = torch.load(tmp_path / f"2_{rank}.pt", weights_only=False)
        np.testing.assert_allclose(two["u"], one["u"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(two["i"], one["i"], rtol=1e-4, atol=1e-5)


def test_shard_embeddings_needs_distributed_mf():
    from graphrec.datasets import make_latent_factor_interactions
    from graphrec.recsys import DirectAU

    data = make_latent_factor_interactions(n_users=20, n_items=10, mean_interactions=3, random_state=0)
    with pytest.raises(ValueError, match="shard_embeddings"):
        DirectAU(epochs=1, shard_embeddings=True).fit(data.user_items)


def _ctr_worker(rank: int, world: int, store: str, out: str) -> None:
    from graphrec.ctr import CTRClassifier
    from graphrec.datasets.generators import make_ctr

    torch.set_num_threads(1)
    with _process_group(rank, world, store):
        X, y = make_ctr(n_rows=1500, random_state=0).split("train")
        est = CTRClassifier("deepfm", hidden=(16,), batch_size=250, max_epochs=3, random_state=0,
                            distributed=True).fit(X, y)
        torch.save({"p": est.predict_proba(X)[:, 1]}, f"{out}/ctr{rank}.pt")


def test_ctr_classifier_on_two_processes_follows_one(tmp_path):
    import numpy as np

    from graphrec.ctr import CTRClassifier
    from graphrec.datasets.generators import make_ctr

    _spawn(_ctr_worker, 2, tmp_path)
    X, y = make_ctr(n_rows=1500, random_state=0).split("train")
    single = CTRClassifier("deepfm", hidden=(16,), batch_size=250, max_epochs=3, random_state=0).fit(X, y)
    for rank in range(2):
        got = torch.load(tmp_path / f"ctr{rank}.pt", weights_only=False)["p"]
        np.testing.assert_allclose(got, single.predict_proba(X)[:, 1], rtol=1e-4, atol=1e-5)
