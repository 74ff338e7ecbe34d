"""The ``graphrec`` command line: argument checks, ``datasets``, ``info`` and the early output checks of ``bench``."""
from __future__ import annotations

import sys

import pytest

from graphrec.cli import main


def _no_run(monkeypatch):
    import graphrec.bench

    monkeypatch.setattr(graphrec.bench, "run_bench", lambda *a, **k: pytest.fail("ran before checking its arguments"))


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_bench_needs_at_least_one_seed(capsys, monkeypatch, seeds):
    _no_run(monkeypatch)
    assert main(["bench", "cluster", "--seeds", seeds]) == 2
    assert capsys.readouterr().err.strip() == "graphrec bench: --seeds must be >= 1"


@pytest.mark.parametrize("action", ["info", "fetch"])
def test_datasets_info_and_fetch_need_a_name(capsys, action):
    assert main(["datasets", action]) == 2
    assert capsys.readouterr().err.strip() == f"graphrec datasets {action}: a dataset NAME is required"


def test_datasets_fetch_verifies_the_files_it_finds_and_loads_them(capsys, data_root):
    from graphrec.datasets import get_card, load

    card = get_card("cora")
    assert main(["datasets", "fetch", "cora", "--root", str(data_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == [f"ok  {data_root / card.path / f.name}" for f in card.files]
    assert lines[-1] == str(load("cora", data_root))


def test_info_lists_versions_and_kernels(capsys, monkeypatch):
    import numpy
    import torch

    import graphrec
    from graphrec._config import get_data_home
    from graphrec.kernels import available_backends

    monkeypatch.setitem(sys.modules, "torch_geometric", None)   # import fails: reported, not raised
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"graphrec {graphrec.__version__}  python ")
    assert lines[0].endswith(f"data home {get_data_home()}")
    listed = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines[1:]}
    assert listed["torch"] == torch.__version__ and listed["numpy"] == numpy.__version__
    assert listed["torch_geometric"] == "not installed"
    assert listed["kernels"] == ", ".join(available_backends())


def test_bench_output_folder_that_is_not_writable_fails_before_the_run(tmp_path, capsys, monkeypatch):
    import graphrec.cli

    _no_run(monkeypatch)
    real_access = graphrec.cli.os.access
    monkeypatch.setattr(graphrec.cli.os, "access", lambda path, mode: False if str(path) == str(tmp_path)
                        else real_access(path, mode))   # as for a user without write permission there
    assert main(["bench", "cluster", "--seeds", "1", "--json", str(tmp_path / "out.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"graphrec bench: --json {tmp_path / 'out.json'}: "
                                               f"its folder {tmp_path} is not writable")


def test_bench_plot_without_matplotlib_fails_before_the_run(tmp_path, capsys, monkeypatch):
    # the missing package used to be found only after the whole benchmark had run
    _no_run(monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "cluster", "--seeds", "1", "--plot", str(tmp_path / "res.png")]) == 2
    assert capsys.readouterr().err.strip() == "graphrec bench: --plot needs matplotlib: pip install 'graphrec[plot]'"
    assert list(tmp_path.iterdir()) == []


def test_plot_functions_without_matplotlib_name_the_extra(tmp_path, monkeypatch):
    from graphrec.bench import get_task
    from graphrec.bench.runner import BenchResult, plot, plot_embeddings

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"--plot needs matplotlib: pip install 'graphrec\[plot\]'"):
        plot(BenchResult("cluster", "cpu", [0]), ["acc"], tmp_path / "a.png")
    with pytest.raises(ImportError, match=r"pip install 'graphrec\[plot\]'"):
        plot_embeddings(get_task("cluster"), ["s2cag"], ["karate"], tmp_path / "b.png")
