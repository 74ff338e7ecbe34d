"""``graphrec bench kg``: registered methods and datasets, one scored run, the command line."""
from __future__ import annotations

import numpy as np
import pytest

from graphrec.bench import get_task, run_bench
from graphrec.cli import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_kg_task_lists_both_methods_and_every_kg_dataset():
    task = get_task("kg")
    assert {"lowfer", "tucker"} <= set(task.methods)
    assert {"synthetic", "umls", "kinship", "nations", "wn18rr", "fb15k-237"} <= set(task.datasets)


def test_bench_kg_on_the_generated_kg_is_scored():
    first = run_bench("kg", ["tucker"], ["synthetic"], seeds=[0])
    (row,) = first.summary()
    assert row["method"] == "tucker" and row["dataset"] == "synthetic"
    assert 0 < row["mrr"]["mean"] <= 1 and row["mr"]["mean"] >= 1 and row["epochs"]["mean"] == 20
    assert 1 <= row["best_epoch"]["mean"] <= 20
    chance = np.mean(1.0 / np.arange(1, 81))
    assert row["mrr"]["mean"] > chance


def test_cli_bench_kg_list(capsys):
    assert main(["bench", "kg", "--list"]) == 0
    out = capsys.readouterr().out
    assert "lowfer" in out and "tucker" in out and "wn18rr" in out
