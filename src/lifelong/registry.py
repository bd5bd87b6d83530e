"""Name -> class registries used by configs, the CLI and ``lifelong list``.

Each package keeps one registry (``SCHEDULES``, ``CONSOLIDATORS``, ``BUFFERS``,
``BENCHMARKS``, ``STRATEGIES``, ``METRICS``); every method file registers its
class with a decorator, and the package ``__init__`` imports its method files
explicitly. There is no import-time discovery magic.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from lifelong.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    summary: str


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry(Generic[T]):
    """A mapping from config names to classes (or factories), with helpful errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, summary: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, obj, summary or _first_line(obj))
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._entries[name].obj
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Choose one of: {', '.join(self.names())}."

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def build(registry: Registry, name: str, params: dict[str, Any] | None = None, **context: Any):
    """Instantiate ``registry[name](**params)``; bad parameters give a ConfigError.

    ``context`` holds keyword arguments the library supplies (not the user), and
    is passed only where the constructor accepts them.
    """
    cls = registry.get(name)
    params = dict(params or {})
    sig = inspect.signature(cls)
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    allowed = [n for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [k for k in params if k not in allowed and not accepts_kwargs]
    if unknown:
        raise ConfigError(
            f"{registry.kind} '{name}' has no parameter {', '.join(repr(u) for u in unknown)}. "
            f"Its parameters are: {', '.join(a for a in allowed if a not in context) or '(none)'}."
        )
    kwargs = {k: v for k, v in context.items() if k in allowed or accepts_kwargs}
    kwargs.update(params)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{registry.kind} '{name}': {exc}") from None
