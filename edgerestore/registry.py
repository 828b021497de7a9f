"""One registry type for everything looked up by name: stages, named pipelines,
backends, denoise methods.

A :class:`Registry` maps names to entries (a factory, a definition, ...) with a one-line
description each. It refuses a second entry under a name already taken (two plugins
that both register ``sharpen`` is a bug to report, not a silent override), lists itself
in registration order for ``run --list`` and error messages, and says what is available
when a name is unknown.

An entry may be registered by reference, as ``"package.module:attribute"`` wrapped in
:class:`Ref`: the module is imported when the entry is first used. This keeps the
dependencies one-way: a core package can list a built-in from a package above it (the
runtime lists the repair stage) without importing it, the way packaging entry points do.

>>> methods = Registry("denoise method")
>>> @methods.register("identity", description="returns its input")
... def identity(img, sigma):
...     return img
>>> methods.names()
['identity']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from edgerestore.errors import InputError

T = TypeVar("T")


class RegistryError(InputError):
    """A name registered twice, or looked up and not found (the message lists the names)."""


@dataclass(frozen=True)
class Ref:
    """A registry value given by reference: ``Ref("edgerestore.repair.stage:RepairStage")``.

    Resolved (imported) on first use by :meth:`Registry.get`.
    """

    target: str

    def __post_init__(self) -> None:
        module, _, attr = self.target.partition(":")
        if not module or not attr:
            raise RegistryError(f"a reference is 'package.module:attribute', got {self.target!r}")

    def resolve(self) -> Any:
        import importlib

        module, _, attr = self.target.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered item: its ``name``, the ``value`` and a one-line ``description``."""

    name: str
    value: T
    description: str = ""


class Registry(Generic[T]):
    """Names -> entries, each name once.

    ``kind`` names what is registered (``"stage"``, ``"named pipeline"``, ...) in messages.
    ``check_name``: a function that raises on a name this registry cannot hold (e.g. stage
    names must be Python identifiers to be usable in pipeline strings).
    """

    def __init__(self, kind: str, *, check_name: Callable[[str], None] | None = None):
        self.kind = kind
        self._check_name = check_name
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, value: T, description: str = "") -> T:
        """Register ``value`` under ``name``; a name already taken raises :class:`RegistryError`."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if self._check_name is not None:
            self._check_name(name)
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered "
                                f"({self._entries[name].value!r}); pick another name")
        self._entries[name] = Entry(name, value, description)
        return value

    def register(self, name: str, *, description: str = "") -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""

        def deco(value: T) -> T:
            return self.add(name, value, description)

        return deco

    def remove(self, name: str) -> None:
        """Unregister ``name`` (tests and plugins that clean up after themselves)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The value registered as ``name`` (a :class:`Ref` is imported now, once); an
        unknown name raises with the list of names."""
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        """The whole :class:`Entry` of ``name`` (value and description), references resolved."""
        try:
            entry = self._entries[name]
        except (KeyError, TypeError):
            raise RegistryError(f"unknown {self.kind} {name!r}; available: "
                                f"{', '.join(self.names()) or '(none)'}") from None
        if isinstance(entry.value, Ref):
            entry = Entry(entry.name, entry.value.resolve(), entry.description)
            self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        """Registered entries, in registration order (references resolved)."""
        return [self.entry(n) for n in self.names()]

    def describe(self) -> list[tuple[str, str]]:
        """``(name, description)`` pairs for listings such as ``run --list``."""
        return [(e.name, e.description) for e in self._entries.values()]

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()!r})"
