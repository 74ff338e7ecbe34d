"""Where data lives (``graphrec._config``) and how dataset cards are read (``graphrec.datasets._cards``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from graphrec import _config, get_data_home, set_data_home
from graphrec.datasets import _cards
from graphrec.datasets._cards import parse_card

SHA = "c87ee21d81218c41bdde1d66a10080835899a1f45d6d6cdefa11859148fba3b3"


# ---------------------------------------------------------------------------------------------
# Data roots
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Fresh roots: no set_data_home, $GRAPHREC_DATA and the default home in tmp_path."""
    monkeypatch.setattr(_config, "_data_home", None)   # restored after the test, whatever it sets
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(_config, "DEFAULT_DATA_HOME", tmp_path / "default")
    return tmp_path


def test_set_data_home_overrides_the_environment_until_reset(roots):
    set_data_home(roots / "mine")
    assert get_data_home() == roots / "mine"
    assert _config.data_roots() == [roots / "mine", roots / "default"]
    assert _config.data_roots(roots / "given")[0] == roots / "given"
    set_data_home(None)
    assert get_data_home() == roots / "env"
    assert _config.data_roots() == [roots / "env", roots / "default"]


def test_set_data_home_expands_the_user_folder(roots, monkeypatch):
    monkeypatch.setenv("HOME", str(roots / "home"))
    set_data_home("~/graphrec-data")
    assert get_data_home() == roots / "home" / "graphrec-data"


def test_a_data_home_that_is_a_file_is_named_with_its_source(roots):
    (roots / "file").write_text("")
    set_data_home(roots / "file")
    with pytest.raises(NotADirectoryError, match=r"set_data_home='.*file' is a file; expected a data folder"):
        _config.data_roots()


def test_writable_root_skips_roots_it_cannot_create_or_write(roots):
    (roots / "file").write_text("")
    # a root below a file cannot be created: the next root in order is used
    assert _config.writable_root(roots / "file" / "sub") == roots / "env"
    # a read-only folder is skipped even for root, whose writes the permission bits do not stop
    (roots / "readonly").mkdir()
    os.chmod(roots / "readonly", 0o555)
    try:
        assert _config.writable_root(roots / "readonly") == roots / "env"
    finally:
        os.chmod(roots / "readonly", 0o755)


def test_no_writable_root_is_a_permission_error_listing_the_roots(roots, monkeypatch):
    (roots / "file").write_text("")
    monkeypatch.setenv("GRAPHREC_DATA", str(roots / "file" / "env"))
    monkeypatch.setattr(_config, "DEFAULT_DATA_HOME", roots / "file" / "default")
    with pytest.raises(PermissionError, match=r"no writable data root among \[.*file/env.*file/default.*\]; "
                                              r"pass root=\.\.\. or set \$GRAPHREC_DATA"):
        _config.writable_root()


def test_a_folder_that_cannot_be_examined_is_not_writable(tmp_path):
    assert not _config._is_writable(tmp_path / "missing")
    assert _config._is_writable(tmp_path)


# ---------------------------------------------------------------------------------------------
# Cards
# ---------------------------------------------------------------------------------------------


def _card_text(name: str = "toy", kind: str = "graph", files: str | None = None) -> str:
    if files is None:
        files = f'[[files]]\nname = "toy.mat"\nurl = "https://example.org/toy.mat"\nsha256 = "{SHA}"\n'
    return (
        f'name = "{name}"\nkind = "{kind}"\nformat = "s2cag-mat"\ntitle = "t"\npath = "graphs/toy"\n'
        f'homepage = "https://example.org"\nlicense = "l"\ncitation = "c"\nconversion = "v"\n\n{files}'
    )


def test_a_valid_card_parses(tmp_path):
    path = tmp_path / "toy.toml"
    entry = f'[[files]]\nname = "a"\nurl = "https://x/a"\nsha256 = "{SHA.upper()}"\nsize = 3\n'
    path.write_text(_card_text(files=entry))
    card = parse_card(path)
    assert card.name == "toy" and card.source == path and card.stats == {} and card.options == {}
    assert card.files == (_cards.FileSpec("a", "https://x/a", SHA, 3),)


@pytest.mark.parametrize(
    "text, message",
    [
        (_card_text(kind="graphs"), r"kind='graphs', expected one of \('graph'"),
        (_card_text(files='[[files]]\nname = "a"\nsha256 = "00"\n'), r"files\[0\] lacks 'url'"),
        (_card_text(files='[[files]]\nname = "a"\nurl = "https://x/a"\nsha256 = "abc"\n'),
         r"files\[0\]\.sha256 must be 64 hex digits, got 'abc'"),
        # 64 characters that are not hex digits passed, and a checksum written as a number failed
        # with "object of type 'int' has no len()", naming neither the card nor the key
        (_card_text(files=f'[[files]]\nname = "a"\nurl = "https://x/a"\nsha256 = "{"z" * 64}"\n'),
         r"files\[0\]\.sha256 must be 64 hex digits, got 'zzzz"),
        (_card_text(files='[[files]]\nname = "a"\nurl = "https://x/a"\nsha256 = 12\n'),
         r"files\[0\]\.sha256 must be 64 hex digits, got 12"),
        # a single table instead of an array of tables was read key by key ("files[0] lacks 'url'")
        (_card_text(files=f'[files]\nname = "a"\nurl = "https://x/a"\nsha256 = "{SHA}"\n'),
         r"files must be an array of tables"),
    ],
)
def test_bad_cards_name_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"dataset card .*bad\.toml: {message}"):
        parse_card(path)


@pytest.fixture
def card_folder(tmp_path, monkeypatch):
    """``all_cards`` reading tmp_path/cards; its cache is emptied before and after."""
    folder = tmp_path / "cards"
    folder.mkdir()
    monkeypatch.setattr(_cards, "cards_dir", lambda: folder)
    _cards.all_cards.cache_clear()
    yield folder
    _cards.all_cards.cache_clear()


def test_a_dataset_name_defined_twice_names_both_cards(card_folder):
    (card_folder / "a.toml").write_text(_card_text("toy"))
    assert list(_cards.all_cards()) == ["toy"]
    _cards.all_cards.cache_clear()
    (card_folder / "b.toml").write_text(_card_text("toy"))
    with pytest.raises(ValueError, match=r"dataset name 'toy' is defined twice \(.*a\.toml and .*b\.toml\)"):
        _cards.all_cards()


def test_an_installed_wheel_reads_its_packaged_cards(tmp_path, monkeypatch):
    import importlib.resources

    checkout = Path(_cards.__file__).resolve().parents[2] / "datasets"
    packaged = tmp_path / "_cards"
    monkeypatch.setattr(importlib.resources, "files", lambda package: packaged)
    assert _cards.cards_dir() == checkout   # the package is not a folder: the checkout's cards
    packaged.mkdir()
    assert _cards.cards_dir() == packaged
