"""The download path, exercised against a local HTTP server on 127.0.0.1 that serves the shared files.

No test here reaches the network.
"""
from __future__ import annotations

import dataclasses
import functools
import http.server
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from graphrec.datasets import ChecksumError, get_card, load
from graphrec.datasets import _registry
from graphrec.datasets._fetch import download, fetch_files


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from ``directory``; ``/truncated/...`` sends half a file, ``/drop/...`` hangs up mid-body."""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        for prefix in ("/truncated", "/drop"):
            if self.path.startswith(prefix + "/"):
                real = Path(self.directory) / self.path[len(prefix) + 1 :]
                body = real.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                if prefix == "/drop":
                    self.wfile.flush()
                    self.connection.shutdown(2)
                return
        super().do_GET()


@pytest.fixture(scope="module")
def server(data_root):
    handler = functools.partial(_Handler, directory=str(data_root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _local_card(name: str, base_url: str):
    """The real card with every URL pointing at the local server's copy of the same file."""
    card = get_card(name)
    files = tuple(dataclasses.replace(f, url=f"{base_url}/{card.path}/{f.name}") for f in card.files)
    return dataclasses.replace(card, files=files)


@pytest.fixture
def empty_roots(tmp_path, monkeypatch):
    """No data anywhere: $GRAPHREC_DATA and the default cache are empty temp folders."""
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("graphrec._config.DEFAULT_DATA_HOME", tmp_path / "cache")
    return tmp_path


def test_load_downloads_verifies_and_converts_once(server, empty_roots, monkeypatch):
    card = _local_card("cora", server)
    monkeypatch.setattr(_registry, "get_card", lambda name: card)
    graph = load("cora")
    assert (graph.n_nodes, graph.n_edges, graph.n_features) == (2708, 5278, 1433)
    downloaded = sorted(p.name for p in (empty_roots / "data" / card.path).iterdir())
    assert downloaded == sorted(f.name for f in card.files)
    # The second load comes from the processed cache: no file is fetched again.
    monkeypatch.setattr(_registry, "fetch_files", lambda *a, **k: pytest.fail("raw files were read again"))
    again = load("cora")
    assert (again.adjacency != graph.adjacency).nnz == 0
    np.testing.assert_array_equal(again.labels, graph.labels)


def test_existing_files_are_not_downloaded(server, data_root, empty_roots, monkeypatch):
    card = get_card("cora")
    monkeypatch.setenv("GRAPHREC_DATA", str(data_root))
    monkeypatch.setattr("graphrec.datasets._fetch.download", lambda *a, **k: pytest.fail("downloaded a file that exists"))
    paths = fetch_files(card)
    assert all(Path(p).is_relative_to(data_root) for p in paths.values())


@pytest.mark.parametrize("mode", ["truncated", "drop"])
def test_interrupted_or_truncated_download_leaves_nothing(server, empty_roots, mode):
    card = get_card("cora")
    spec = card.files[0]
    dest = empty_roots / "dl" / spec.name
    with pytest.raises((ChecksumError, OSError)) as info:
        download(f"{server}/{mode}/{card.path}/{spec.name}", dest, spec, verbose=False)
    if isinstance(info.value, ChecksumError):
        assert spec.sha256 in str(info.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no partial temp file either


def test_corrupt_local_file_names_file_and_checksum(data_root, empty_roots, monkeypatch):
    card = get_card("cora")
    spec = card.files[0]
    folder = empty_roots / "data" / card.path
    folder.mkdir(parents=True)
    for f in card.files:
        (folder / f.name).write_bytes((data_root / card.path / f.name).read_bytes())
    truncated = folder / spec.name
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(ChecksumError) as info:
        load("cora")
    message = str(info.value)
    assert str(truncated) in message and spec.sha256 in message
    assert not (empty_roots / "data" / "processed").exists() or not any((empty_roots / "data" / "processed").iterdir())


@pytest.mark.parametrize(
    "name,bad_file,keep",
    [
        ("dblp", "dblp.zip", 1000),
        ("beauty", "Beauty.txt", 5000),
        ("umls", "train.txt", 1000),
        ("criteo-sample", "criteo_sample.txt", 3000),
        ("funbat-synthetic-r1", "simulation_r1.npy", 4000),
        ("mutag", "MUTAG_A.txt", 2000),
    ],
)
def test_truncated_file_of_each_kind_gives_checksum_error(name, bad_file, keep, tmp_path, data_root):
    """One dataset per kind: a truncated copy under ``root`` raises naming the file and its sha256."""
    card = get_card(name)
    spec = next(f for f in card.files if f.name == bad_file)
    for f in card.files:
        dest = tmp_path / card.path / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = (data_root / card.path / f.name).read_bytes()
        dest.write_bytes(data[:keep] if f is spec else data)
    with pytest.raises(ChecksumError, match=f"{bad_file} is corrupt or truncated.*{spec.sha256}"):
        load(name, root=tmp_path)


def test_unknown_dataset_lists_available():
    with pytest.raises(KeyError, match="unknown dataset 'no-such'.*cora"):
        load("no-such")


@pytest.mark.parametrize("where", ["missing", "refused"])
def test_failed_request_names_the_url_and_leaves_nothing(server, empty_roots, where):
    spec = get_card("cora").files[0]
    url = f"{server}/no/such/{spec.name}" if where == "missing" else f"http://127.0.0.1:1/{spec.name}"
    dest = empty_roots / "dl" / spec.name
    with pytest.raises(OSError, match="download of " + re.escape(url) + " failed") as info:
        download(url, dest, spec, verbose=False)
    assert ("404" if where == "missing" else "refused") in str(info.value)
    assert list(dest.parent.iterdir()) == []


@pytest.mark.parametrize("damage", [b"", b"\x80\x09not a pickle", b"\x80\x05\x95\xff\xff\xff\xff\xff\xff\xff\x7f"])
def test_damaged_processed_cache_is_converted_again(server, empty_roots, monkeypatch, caplog, damage):
    card = _local_card("cora", server)
    monkeypatch.setattr(_registry, "get_card", lambda name: card)
    graph = load("cora")
    (cache,) = (empty_roots / "data" / "processed").glob("cora-*.pkl")
    cache.write_bytes(damage)
    with caplog.at_level("WARNING", logger="graphrec.datasets._registry"):
        again = load("cora")
    assert (again.adjacency != graph.adjacency).nnz == 0
    assert "unreadable" in caplog.text and str(cache) in caplog.text
    assert cache.stat().st_size > 1000  # rewritten


@pytest.mark.parametrize("via", ["env", "root"])
def test_a_data_root_that_is_a_file_is_an_error_not_a_fallback(tmp_path, monkeypatch, via):
    typo = tmp_path / "datasets.txt"
    typo.write_text("not a folder")
    monkeypatch.setenv("GRAPHREC_DATA", str(typo if via == "env" else tmp_path))
    with pytest.raises(NotADirectoryError, match=r"(\$GRAPHREC_DATA|root)=.*datasets.txt.* is a file"):
        load("cora", root=typo if via == "root" else None)
