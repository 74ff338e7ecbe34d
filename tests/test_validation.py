"""The shared argument checks of graphrec.utils.validation."""
import numpy as np
import pytest

from graphrec.utils.validation import check_bool


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_check_bool_returns_a_python_bool(value):
    out = check_bool(value, "flag")
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", [1, 0, 1.0, "yes", None, np.array([True])])
def test_check_bool_rejects_other_types_naming_the_argument(value):
    with pytest.raises(TypeError, match="flag must be a bool, got"):
        check_bool(value, "flag")


@pytest.mark.parametrize("env, verbose, disabled", [
    (None, True, False), (None, False, True), ("1", True, True), ("true", True, True), ("0", True, False),
])
def test_progress_bar_follows_verbose_and_tqdm_disable(monkeypatch, env, verbose, disabled):
    from graphrec.utils import progress

    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    bar = progress(range(3), verbose=verbose)
    assert bar.disable is disabled
    assert list(bar) == [0, 1, 2]
