"""The ``--json`` tables of docs/json.md, read as data, and the check that keeps a command's JSON lines
and its table in step: every key documented, every *always* field present, each value of its type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"
TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "list of strings": (list,),
    "list of objects": (list,),
}


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[type, ...]
    nullable: bool
    always: bool


@cache
def documented(section: str) -> dict[str, Field]:
    """The fields of the table under ``## <section>``."""
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/json.md has no section {section!r}"
    fields: dict[str, Field] = {}
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        name, kind, when = cells[0].strip("`"), cells[1], cells[2]
        nullable = kind.endswith(" or null")
        base = kind.removesuffix(" or null")
        assert base in TYPES, f"docs/json.md, {section}.{name}: unknown type {kind!r}"
        assert name not in fields, f"docs/json.md, {section}: {name} twice"
        fields[name] = Field(name, TYPES[base], nullable, when == "always")
    assert fields, f"docs/json.md, {section}: no table"
    return fields


def assert_documented(section: str, record: dict[str, Any]) -> None:
    """``record`` (one JSON line) has exactly what the table says: no undocumented key, every *always*
    field, each value of the documented type; an upload's ``import`` is checked against the import table."""
    fields = documented(section)
    undocumented = sorted(set(record) - set(fields))
    assert not undocumented, f"{section} --json has fields docs/json.md does not document: {undocumented}"
    missing = sorted(name for name, f in fields.items() if f.always and name not in record)
    assert not missing, f"{section} --json lacks fields docs/json.md calls always: {missing}"
    for name, value in record.items():
        field = fields[name]
        if value is None:
            assert field.nullable, f"{section}.{name} is null, docs/json.md does not say it may be"
            continue
        wrong_bool = isinstance(value, bool) and bool not in field.types
        assert isinstance(value, field.types) and not wrong_bool, f"{section}.{name} = {value!r}: not {field.types}"
    if isinstance(record.get("import"), dict):
        assert_documented("import", record["import"])
