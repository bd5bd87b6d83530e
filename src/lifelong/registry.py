"""Name -> class registries used by configs, the CLI and ``lifelong list``.

One registration pattern for every package:

1. the package's registry is created once, in its ``registry.py`` (or the
   module that defines the contract): ``CONSOLIDATORS = Registry("consolidator",
   extensions=("lifelong.hf",))``;
2. a method file decorates its class (or factory) with the config name:
   ``@CONSOLIDATORS.register("ewc")``;
3. the package's ``__init__`` imports every method class by name and lists it
   in ``__all__`` (one line per method: that import is what registers it).

Optional packages (``lifelong.hf``: language-model benchmarks, models, LoRA)
register into the core registries the same way when they are imported. The
core never imports them at module level: a registry imports its
``extensions`` the first time a name is not found or all names are listed
(``lifelong list``, config validation). There is no other import-time
discovery.

A registered class refuses unknown keyword arguments with a
:class:`~lifelong.errors.ConfigError` that lists the accepted ones, whether
it is built through :func:`build` or constructed directly
(``EWC(lamda=1)``).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, Sequence, TypeVar

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


def accepted_parameters(obj: Callable, supplied: Sequence[str] = ()) -> tuple[list[str], bool]:
    """The keyword parameters of a class or factory (less ``supplied``) and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return [], True
    names = [n for n, p in sig.parameters.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self" and n not in supplied]
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _keyword_checked(kind: str, name: str, obj: Any) -> Any:
    """``obj`` (a class or a function) made to raise a ConfigError, naming the
    accepted parameters, when called with arguments its signature refuses."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return obj

    def refuse(exc: TypeError, kwargs: dict[str, Any]) -> ConfigError:
        allowed, any_kw = accepted_parameters(obj)
        unknown = [k for k in kwargs if k not in allowed] if not any_kw else []
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            return ConfigError(f"{kind} '{name}' has no parameter {', '.join(repr(u) for u in unknown)}.{hint} "
                               f"Its parameters are: {', '.join(allowed) or '(none)'}.")
        return ConfigError(f"{kind} '{name}': {exc}. Its parameters are: {', '.join(allowed) or '(none)'}.")

    def check(args: tuple, kwargs: dict[str, Any]) -> None:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise refuse(exc, kwargs) from None

    if inspect.isclass(obj):
        @functools.wraps(target)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if type(self).__init__ is __init__:  # not when a subclass's own __init__ calls super()
                check(args, kwargs)
            target(self, *args, **kwargs)

        obj.__init__ = __init__
        return obj

    @functools.wraps(obj)
    def factory(*args: Any, **kwargs: Any) -> Any:
        check(args, kwargs)
        return obj(*args, **kwargs)

    return factory


def _related(a: str, b: str) -> bool:
    """Whether dotted module names ``a`` and ``b`` are equal or one contains the other."""
    return bool(a) and (a == b or a.startswith(b + ".") or b.startswith(a + "."))


class Registry(Generic[T]):
    """A mapping from config names to classes (or factories), with helpful errors.

    ``extensions`` are modules that register further entries when imported
    (``lifelong.hf``); they are imported the first time a name is missing or
    all names are listed, never when the registry is created. A missing
    extension (an optional package not installed) is skipped; any other
    import error is raised.
    """

    def __init__(self, kind: str, extensions: Sequence[str] = ()):
        self.kind = kind
        self.extensions = tuple(extensions)
        self._entries: dict[str, Entry[T]] = {}
        self._extended = False

    # -- registration ------------------------------------------------------
    def register(self, name: str, summary: str | None = None) -> Callable[[T], T]:
        """Decorator: register a class or factory under ``name``; calling it with
        an unknown keyword then raises a ConfigError listing the accepted ones."""
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            checked = _keyword_checked(self.kind, name, obj)
            self._entries[name] = Entry(name, checked, summary or _first_line(obj))
            return checked

        return deco

    def load_extensions(self) -> None:
        """Import the extension modules (they register their entries)."""
        self._extended = True
        for module in self.extensions:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                # only an extension module itself (or its package) being absent is expected
                if not any(_related(exc.name or "", ext) for ext in self.extensions):
                    raise

    def _complete(self) -> None:
        """Make every entry present (called before listing all names)."""
        if not self._extended:
            self.load_extensions()

    def _find(self, name: str) -> Entry[T] | None:
        entry = self._entries.get(name)
        if entry is None:
            self._complete()
            entry = self._entries.get(name)
        return entry

    # -- look-up -------------------------------------------------------------
    def get(self, name: str) -> T:
        entry = self._find(name)
        if entry is None:
            raise ConfigError(self.unknown_message(name))
        return entry.obj

    def build(self, name: str, params: dict[str, Any] | None = None, **context: Any) -> Any:
        """``build(self, name, params, **context)``: instantiate an entry by name."""
        return build(self, name, params, **context)

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Choose one of: {', '.join(self.names())}."

    def names(self) -> list[str]:
        self._complete()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def build(registry: Registry, name: str, params: dict[str, Any] | None = None, **context: Any):
    """Instantiate ``registry[name](**params)``; bad parameters give a ConfigError.

    ``context`` holds keyword arguments the library supplies (not the user), and
    is passed only where the constructor accepts them.
    """
    cls = registry.get(name)
    params = dict(params or {})
    allowed, accepts_kwargs = accepted_parameters(cls)
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


def registries() -> dict[str, Any]:
    """The registries configs name things from (kind -> registry), imported on first use (no import-time work)."""
    from lifelong.assessment import METRICS
    from lifelong.consolidation import CONSOLIDATORS
    from lifelong.curriculum import SCHEDULES
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.memory import BUFFERS
    from lifelong.models import MODELS

    regs: dict[str, Any] = {"benchmark": BENCHMARKS, "model": MODELS, "schedule": SCHEDULES, "buffer": BUFFERS,
                            "consolidator": CONSOLIDATORS, "metric": METRICS}
    strategies = _optional_registry("lifelong.strategies", "STRATEGIES")
    if strategies is not None:
        regs["strategy"] = strategies
    scorers = _optional_registry("lifelong.curriculum", "SCORERS")
    if scorers is not None:
        regs["scorer"] = scorers
    return regs


def _optional_registry(module: str, attr: str):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    return getattr(mod, attr, None)
