"""Docs and tests keep up with the hooks (datasette's meta-tests): every hookspec has a heading with its
exact signature in docs/plugins.md, a ``:param`` per argument in its docstring, and a test named
``test_hook_<hook name>`` somewhere under tests/."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from drtransfer import hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
SPECS = sorted(
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("drtransfer_") and hasattr(function, "drtransfer_spec")
)


def signature(name: str) -> str:
    return f"{name}({', '.join(inspect.signature(getattr(hookspecs, name)).parameters)})"


def test_there_are_hooks_to_check() -> None:
    assert {"drtransfer_select_checkpoint", "drtransfer_notify", "drtransfer_extend_plan"} <= set(SPECS)


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_is_documented_with_its_signature(name: str) -> None:
    headings = re.findall(r"^### (.+)$", DOCS.read_text(), flags=re.MULTILINE)
    assert signature(name) in headings


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_docstring_describes_every_argument(name: str) -> None:
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    for argument in inspect.signature(function).parameters:
        assert f":param {argument}:" in doc
    if inspect.signature(function).return_annotation not in ("None", None):
        assert ":returns:" in doc


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_has_a_test(name: str) -> None:
    pattern = re.compile(rf"^\s*def test_hook_{name}\b", flags=re.MULTILINE)
    assert any(pattern.search(path.read_text()) for path in (ROOT / "tests").rglob("test_*.py"))


def test_every_documented_hook_exists() -> None:
    documented = re.findall(r"^### (drtransfer_\w+)\(", DOCS.read_text(), flags=re.MULTILINE)
    assert sorted(documented) == SPECS
