"""The shared training loop: ``Trainer``, device-side mini-batching, early stopping, checkpoints.

Every torch model in graphrec (DirectAU, the CTR models, LowFER, SPE) trains through
:class:`Trainer`::

    trainer = Trainer(model, optimizer, loss_fn, max_epochs=50, eval_fn=evaluate,
                      monitor="ndcg@20", patience=5, checkpoint_dir="runs/x", random_state=0)
    result = trainer.fit(lambda epoch, g: tensor_batches(users, items, batch_size=1024, generator=g))

:class:`DistributedTrainer` runs the same loop on every rank of a ``torch.distributed`` process
group (``torchrun``), with the same result as one process for mean-over-rows losses.
"""
from graphrec.train.batching import move_to_device, tensor_batches
from graphrec.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from graphrec.train.distributed import DistributedTrainer, init_process_group, shard_batch
from graphrec.train.early_stopping import EarlyStopping
from graphrec.train.trainer import Trainer, TrainResult

__all__ = [
    "CheckpointError",
    "DistributedTrainer",
    "EarlyStopping",
    "Trainer",
    "TrainResult",
    "init_process_group",
    "load_checkpoint",
    "move_to_device",
    "save_checkpoint",
    "shard_batch",
    "tensor_batches",
]
