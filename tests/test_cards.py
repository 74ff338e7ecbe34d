"""Every dataset card is complete, and the shared copy holds exactly the files it describes."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from graphrec.datasets import all_cards, list_datasets
from graphrec.datasets._cards import parse_card
from graphrec.datasets._fetch import sha256sum

CARDS = all_cards()


def test_there_are_cards_for_every_kind():
    kinds = {c.kind for c in CARDS.values()}
    assert {"graph"} <= kinds
    assert list_datasets(kind="graph") == sorted(n for n, c in CARDS.items() if c.kind == "graph")


def test_unknown_kind_is_an_error_not_an_empty_list(capsys):
    from graphrec.cli import main

    with pytest.raises(ValueError, match="kind='graphs' is not a dataset kind; expected one of .*'graph'"):
        list_datasets(kind="graphs")
    assert main(["datasets", "list", "--kind", "graphs"]) == 2
    assert "kind='graphs'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_is_complete(name):
    card = CARDS[name]
    assert card.name == name == card.source.stem
    for text in (card.title, card.license, card.citation, card.conversion, card.homepage):
        assert text.strip()
    assert card.stats, "a card states the statistics the loaded data must match"
    for f in card.files:
        url = urlparse(f.url)
        assert url.scheme == "https" and url.netloc, f"{f.name}: canonical URL must be https, got {f.url}"
        assert all(c in "0123456789abcdef" for c in f.sha256)


@pytest.mark.parametrize("name", sorted(CARDS))
def test_shared_copy_matches_card_checksums(name, data_root):
    card = CARDS[name]
    for f in card.files:
        path = data_root / card.path / f.name
        assert path.is_file(), f"{path} is missing from the shared copy"
        if f.size is not None:
            assert path.stat().st_size == f.size
        assert sha256sum(path) == f.sha256, f"{path} differs from its card"


def test_bad_card_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "graph"\n')
    with pytest.raises(ValueError, match="bad.toml lacks required keys"):
        parse_card(bad)
    bad.write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_card(bad)
