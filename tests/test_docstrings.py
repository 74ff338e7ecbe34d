"""Every public numpydoc ``Parameters`` section names exactly the parameters of the signature.

Public: the classes and functions in each module's ``__all__`` and the public methods defined on
those classes; a class's docstring documents its ``__init__``. Parsed here without numpydoc: the
entries are the lines at the section's own indentation (``name : type``, ``a, b : type`` or a bare
``name``) up to the next section header, so text left after the list reads as bogus names.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import graphrec

_SKIP_MODULES = {"graphrec.__main__"}
_ENTRY = re.compile(r"\s:(?:\s|$)")  # the " : " between names and type


def _public_objects() -> list[tuple[str, object]]:
    """``(qualified name, object)`` of every public class, function and method, each object once."""
    out: list[tuple[str, object]] = []
    seen: set[int] = set()

    def add(name: str, obj: object) -> None:
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append((name, obj))

    for info in pkgutil.walk_packages(graphrec.__path__, "graphrec."):
        if info.name in _SKIP_MODULES:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            add(f"{info.name}.{name}", obj)
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if isinstance(value, (classmethod, staticmethod)):
                        value = value.__func__
                    if inspect.isfunction(value) and not attr.startswith("_"):
                        add(f"{info.name}.{name}.{attr}", value)
    return out


def _is_rule(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {"-"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def documented_parameters(doc: str) -> list[str] | None:
    """Names listed in the ``Parameters`` section of ``doc``, or None if it has none."""
    lines = doc.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and _is_rule(lines[i + 1]):
            base = _indent(lines[i])
            break
    else:
        return None
    names: list[str] = []
    for j in range(i + 2, len(lines)):
        line = lines[j]
        if line.strip() and j + 1 < len(lines) and _is_rule(lines[j + 1]):
            break  # the next section's header
        if not line.strip() or _indent(line) != base:
            continue  # blank or description line
        head = _ENTRY.split(line.strip(), maxsplit=1)[0]
        names += [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
    return names


_DOCUMENTED = [
    pytest.param(obj, id=name)
    for name, obj in _public_objects()
    if documented_parameters(inspect.getdoc(obj) or "") is not None
]


def test_parser_reads_numpydoc_entries():
    doc = inspect.cleandoc("""Summary.

    Parameters
    ----------
    a, b : int
        Description ``c : d`` is not an entry.
    flag
    *args, **kwargs : passed on

    Notes
    -----
    e : not a parameter
    """)
    assert documented_parameters(doc) == ["a", "b", "flag", "args", "kwargs"]
    assert documented_parameters("Summary, no Parameters section.") is None


def test_public_objects_found():
    # a walk that found nothing would let the parametrized test pass vacuously
    assert len(_DOCUMENTED) > 100


@pytest.mark.parametrize("obj", _DOCUMENTED)
def test_parameters_section_matches_signature(obj):
    params = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj).parameters
    documented = documented_parameters(inspect.getdoc(obj))
    required = [
        name for name, p in params.items()
        if name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [name for name in required if name not in documented]
    unknown = [name for name in documented if name not in params]
    assert not missing, f"parameters missing from the docstring: {missing}"
    assert not unknown, f"documented names that are not parameters: {unknown}"


def _unannotated(obj: object) -> list[str]:
    """Parameters (and ``return`` for functions) of ``obj``'s public signature without a type hint."""
    if inspect.isclass(obj):
        if "__init__" not in vars(obj):
            return []
        obj = obj.__init__
    sig = inspect.signature(obj)
    out = [name for name, p in sig.parameters.items()
           if name not in ("self", "cls") and p.annotation is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if obj.__name__ != "__init__" and sig.return_annotation is sig.empty:
        out.append("return")
    return out


@pytest.mark.parametrize("obj", [pytest.param(obj, id=name) for name, obj in _public_objects()])
def test_public_signatures_have_type_hints(obj):
    assert not _unannotated(obj), f"no type hint for {_unannotated(obj)}"
