"""The ``graphrec`` command: ``bench``, ``datasets`` and ``info``.

Heavy modules are imported inside the handlers so that ``graphrec --help`` stays fast.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def _check_output(path: str, option: str) -> None:
    """Fail before a long run, not after it, when ``path`` cannot be written: it is a folder, or its
    folder cannot be created or written to."""
    dest = Path(path)
    if dest.is_dir():
        raise ValueError(f"{option} {path} is a folder; expected a file name")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot create its folder ({exc.strerror or exc})") from None
    if not os.access(dest.parent, os.W_OK):
        raise ValueError(f"{option} {path}: its folder {dest.parent} is not writable")


def _bench(args: argparse.Namespace) -> int:
    from graphrec.bench import all_tasks, get_task, run_bench, write_json
    from graphrec.bench.runner import plot, plot_embeddings

    if args.task is None:
        if not args.list:
            print(f"graphrec bench: a TASK is required, one of {', '.join(sorted(all_tasks()))} "
                  "(graphrec bench --list describes them)", file=sys.stderr)
            return 2
        for name, task in sorted(all_tasks().items()):
            print(f"{name:18s} {task.description}")
        return 0
    task = get_task(args.task)
    if args.list:
        print(f"task {task.name}: {task.description}; metrics: {', '.join(task.metrics)}")
        print("methods:")
        for name, (_, desc) in sorted(task.methods.items()):
            print(f"  {name:24s} {desc}")
        print("datasets:")
        for name, (_, desc) in sorted(task.datasets.items()):
            print(f"  {name:24s} {desc}")
        return 0
    for path, option in ((args.json, "--json"), (args.plot, "--plot")):
        if path:
            _check_output(path, option)
    if args.plot:  # like an unwritable path: found before the run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("--plot needs matplotlib: pip install 'graphrec[plot]'") from None
    seeds = list(range(args.seeds))
    result = run_bench(task, args.method, args.dataset, seeds, device=args.device)
    print(f"graphrec bench {task.name}: {len(seeds)} seed(s) on {args.device}")
    print(result.table(task.metrics))
    if args.json:
        write_json(result, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        plot(result, task.metrics, args.plot)
        print(f"wrote {args.plot}")
        stem, dot, suffix = args.plot.rpartition(".")
        emb_path = f"{stem}_embedding.{suffix}" if dot else f"{args.plot}_embedding"
        methods = args.method or [task.default_method]
        datasets = args.dataset or [task.default_dataset]
        if plot_embeddings(task, methods, datasets, emb_path, device=args.device):
            print(f"wrote {emb_path}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from graphrec.datasets import all_cards, get_card, list_datasets, load
    from graphrec.datasets._fetch import fetch_files

    if args.action == "list":
        cards = all_cards()
        for name in list_datasets(args.kind):
            print(f"{name:22s} {cards[name].kind:13s} {cards[name].title}")
        return 0
    if not args.name:
        print(f"graphrec datasets {args.action}: a dataset NAME is required", file=sys.stderr)
        return 2
    card = get_card(args.name)
    if args.action == "info":
        print(f"{card.name}: {card.title}\nkind: {card.kind}   format: {card.format}   folder: {card.path}")
        print(f"homepage: {card.homepage}\nlicense: {card.license}\ncitation: {card.citation.strip()}")
        print(f"conversion: {card.conversion.strip()}")
        print("statistics: " + ", ".join(f"{k}={v}" for k, v in card.stats.items()))
        for f in card.files:
            print(f"  {f.name}  sha256={f.sha256}  {f.url}")
        return 0
    paths = fetch_files(card, args.root, verbose=True)
    for name, path in paths.items():
        print(f"ok  {path}")
    print(load(card.name, args.root))
    return 0


def _info(args: argparse.Namespace) -> int:
    import platform

    import graphrec
    from graphrec._config import get_data_home

    print(f"graphrec {graphrec.__version__}  python {platform.python_version()}  data home {get_data_home()}")
    for module in ("torch", "numpy", "scipy", "sklearn", "numba", "torch_geometric"):
        try:
            mod = __import__(module)
            print(f"  {module:16s} {mod.__version__}")
        except ImportError:
            print(f"  {module:16s} not installed")
    from graphrec.kernels import available_backends

    print(f"  kernels          {', '.join(available_backends())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec", description="Subspace learning on graphs and recommender data.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="run methods on datasets over seeds and report metrics")
    bench.add_argument("task", nargs="?", help="task name, e.g. cluster (omit it with --list to list the tasks)")
    bench.add_argument("--method", nargs="+", help="method name(s); default: the task's default")
    bench.add_argument("--dataset", nargs="+", help="dataset name(s); default: the task's generated default")
    bench.add_argument("--seeds", type=int, default=3, help="number of seeds 0..N-1 (default 3)")
    bench.add_argument("--device", default="cpu", help="cpu or cuda")
    bench.add_argument("--json", help="write the full result to this JSON file")
    bench.add_argument("--plot", help="write a bar chart of the metrics to this image file and, for methods with an "
                       "embedding (cluster task), a 2-D projection of it coloured by cluster to "
                       "<name>_embedding.<ext> (needs matplotlib)")
    bench.add_argument("--list", action="store_true", help="list the task's methods and datasets, or the tasks")
    bench.set_defaults(func=_bench)

    data = sub.add_parser("datasets", help="list, describe or fetch datasets")
    data.add_argument("action", choices=["list", "info", "fetch"])
    data.add_argument("name", nargs="?")
    data.add_argument("--kind", help="with list: only this kind (graph, interactions, triples, ctr, tensor, molecules)")
    data.add_argument("--root", help="data root searched first (default: $GRAPHREC_DATA, then ~/.cache/graphrec)")
    data.set_defaults(func=_datasets)

    info = sub.add_parser("info", help="versions and available kernels")
    info.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if args.command == "bench" and args.seeds < 1:
        print("graphrec bench: --seeds must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"graphrec {args.command}: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # a failed download, a corrupt data file, a full disk: no traceback, exit status 1
        print(f"graphrec {args.command}: {exc}", file=sys.stderr)
        return 1
