"""Named registries that plugins fill through the ``drtransfer_register_*`` hooks.

Core owns the collection: duplicate names are refused naming both plugins, and an unknown name is
refused listing the known ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from drtransfer.errors import ConfigError, PluginError

T = TypeVar("T")


@dataclass(frozen=True)
class Registration(Generic[T]):
    name: str
    value: T
    description: str
    plugin: str


class Registry(Generic[T]):
    """``register(name, value, description)`` is what a plugin calls; ``get(name)`` is what core calls."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registration[T]] = {}
        self.current_plugin = "?"

    def __call__(self, name: str, value: T, description: str = "") -> None:
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"The {self.kind} {name!r} is registered twice, by plugin {other!r} and by plugin "
                f"{self.current_plugin!r}; disable one of them with --disable-plugin."
            )
        self._entries[name] = Registration(name, value, description, self.current_plugin)

    def get(self, name: str) -> T:
        try:
            return self._entries[name].value
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none is installed"
            raise ConfigError(f"Unknown {self.kind} {name!r}; known: {known}.") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __iter__(self) -> Iterator[Registration[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
