"""Named continual-learning strategies: presets that build a :class:`~lifelong.engine.config.Recipe`.

A strategy is a recipe, nothing more: which consolidators run, which replay
memory is kept, which review schedule mixes it into batches and what the study
pool holds. :data:`STRATEGIES` maps names to factories ``factory(**params) ->
Recipe``; :func:`build_strategy` builds one, :func:`compose` combines several::

    from lifelong.strategies import build_strategy, compose

    er = build_strategy("er", {"memory_size": 200, "ratio": 0.5})
    ewc_er = compose(["ewc", ("er", {"memory_size": 500})])
    train_stream(stream, model, ewc_er, TrainConfig(...))

Every registered consolidator is also a strategy of the same name (ewc,
online-ewc, si, l2, lwf, hft, freeze, agem, der, der++, lora...), derived from
:data:`lifelong.consolidation.CONSOLIDATORS`: its params go to the
consolidator (``lambda`` is accepted for ``lambda_``), and a consolidator
whose class ``needs_memory`` gets a replay memory, taking ``memory_size``
(default 200), ``buffer`` (a name in :data:`lifelong.memory.BUFFERS`) and
``seed``. Adding a method therefore needs no edit here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, Union

from lifelong.consolidation import CONSOLIDATORS
from lifelong.consolidation.base import Consolidator
from lifelong.curriculum import SCHEDULES
from lifelong.engine.config import Recipe
from lifelong.errors import ConfigError
from lifelong.memory import BUFFERS
from lifelong.memory.base import Memory
from lifelong.registry import Entry, Registry, build

#: what :func:`compose` accepts: names, ``(name, params)`` pairs, or a ``{name: params}`` mapping
StrategySpec = Union[Sequence[Union[str, tuple[str, Mapping[str, Any]]]], Mapping[str, Mapping[str, Any]]]


# ----------------------------------------------------------------------------- building blocks
def make_consolidator(name: str, params: Mapping[str, Any] | None = None) -> Consolidator:
    """Build the consolidator ``name``; a ``lambda`` param is passed as ``lambda_``."""
    params = dict(params or {})
    if "lambda" in params:
        if "lambda_" in params:
            raise ConfigError(f"strategy '{name}': give either 'lambda' or 'lambda_', not both.")
        params["lambda_"] = params.pop("lambda")
    return build(CONSOLIDATORS, name, params)


def make_memory(memory_size: int = 200, buffer: str = "reservoir", seed: int = 0, **params: Any) -> Memory:
    """Build a replay buffer by name (``reservoir``, ``class-balanced``, ``herding``)."""
    if isinstance(memory_size, bool) or not isinstance(memory_size, int) or memory_size < 1:
        raise ConfigError(f"memory_size must be a positive integer; got {memory_size!r}.")
    return build(BUFFERS, buffer, {"capacity": memory_size, "seed": seed, **params})


def _summary(cls: type) -> str:
    """A consolidator strategy's one-line summary: the class's ``title`` or its docstring's first line."""
    title = getattr(cls, "title", "")
    return title or next((e.summary for e in CONSOLIDATORS.entries() if e.obj is cls), cls.__name__)


def consolidator_strategy(name: str) -> Callable[..., Recipe]:
    """The strategy of consolidator ``name``: the consolidator alone, or with a
    replay memory (``memory_size``, ``buffer``, ``seed``) when its class
    ``needs_memory``. Derived from the registry, so a new consolidator file is
    a new strategy with nothing else to edit."""
    cls = CONSOLIDATORS.get(name)
    if getattr(cls, "needs_memory", False):
        def factory(memory_size: int = 200, buffer: str = "reservoir", seed: int = 0, **params: Any) -> Recipe:
            return Recipe(name=name, consolidators=[make_consolidator(name, params)],
                          memory=make_memory(memory_size, buffer, seed))

        factory.__doc__ = (f"{_summary(cls)} Params: memory_size, buffer, seed and those of the "
                           f"'{name}' consolidator.")
    else:
        def factory(**params: Any) -> Recipe:  # type: ignore[misc]
            return Recipe(name=name, consolidators=[make_consolidator(name, params)])

        factory.__doc__ = f"{_summary(cls)} Params: those of the '{name}' consolidator."
    factory.__name__ = name.replace("-", "_").replace("+", "p")
    return factory


class StrategyRegistry(Registry):
    """The presets registered in this module, plus one strategy per registered
    consolidator (see :func:`consolidator_strategy`), derived when first asked
    for. A preset of the same name as a consolidator wins."""

    def _derive(self, name: str) -> None:
        self.register(name)(consolidator_strategy(name))

    def _find(self, name: str) -> Entry | None:
        if name not in self._entries and name in CONSOLIDATORS:  # loads lifelong.hf only for its names
            self._derive(name)
        return self._entries.get(name)

    def _complete(self) -> None:
        super()._complete()
        for name in CONSOLIDATORS.names():
            if name not in self._entries:
                self._derive(name)


STRATEGIES: Registry[Callable[..., Recipe]] = StrategyRegistry("strategy")


# ----------------------------------------------------------------------------- presets
@STRATEGIES.register("naive")
def naive() -> Recipe:
    """Fine-tune on each task in turn, nothing against forgetting (the lower bound)."""
    return Recipe(name="naive")


@STRATEGIES.register("joint")
def joint() -> Recipe:
    """Train once on all tasks together (the upper bound; not continual)."""
    return Recipe(name="joint", pool="joint")


@STRATEGIES.register("cumulative")
def cumulative() -> Recipe:
    """At task t, train on the data of tasks 0..t (keeps all data; an upper-bound-like baseline)."""
    return Recipe(name="cumulative", pool="cumulative")


@STRATEGIES.register("er")
def er(memory_size: int = 200, buffer: str = "reservoir", ratio: float = 0.5, seed: int = 0) -> Recipe:
    """Experience replay: a share ``ratio`` of each batch is drawn uniformly from the memory."""
    return Recipe(name="er", memory=make_memory(memory_size, buffer, seed), review=SCHEDULES.get("replay")(ratio))


@STRATEGIES.register("gdumb")
def gdumb(memory_size: int = 200, buffer: str = "class-balanced", seed: int = 0) -> Recipe:
    """GDumb (Prabhu et al. 2020): keep a class-balanced memory, retrain from scratch on it alone at each task."""
    return Recipe(name="gdumb", memory=make_memory(memory_size, buffer, seed), pool="memory", reinit=True)


# ----------------------------------------------------------------------------- public API
def build_strategy(name: str, params: Mapping[str, Any] | None = None) -> Recipe:
    """The recipe of the registered strategy ``name`` with ``params``; unknown
    names or parameters raise a :class:`ConfigError` that lists what is accepted."""
    return build(STRATEGIES, name, dict(params or {}))


def _items(strategies: StrategySpec) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(strategies, str):
        strategies = [strategies]
    if isinstance(strategies, Mapping):
        pairs = [(n, dict(p or {})) for n, p in strategies.items()]
    else:
        pairs = []
        for item in strategies:
            if isinstance(item, str):
                pairs.append((item, {}))
            elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str) \
                    and isinstance(item[1], Mapping):
                pairs.append((item[0], dict(item[1])))
            else:
                raise ConfigError(f"strategy entry {item!r} is not understood; give a name such as 'ewc' "
                                  "or a (name, params) pair such as ('er', {'memory_size': 200}).")
    if not pairs:
        raise ConfigError("no strategy given; name at least one of: " + ", ".join(STRATEGIES.names()) + ".")
    names = [n for n, _ in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"strategy {', '.join(repr(d) for d in dup)} is listed more than once.")
    return pairs


def _same_memory(a: Memory, b: Memory) -> bool:
    return type(a) is type(b) and a.capacity == b.capacity


def compose(strategies: StrategySpec, memory: Memory | None = None, review: Any = None, curriculum: Any = None,
            scorer: Any = None, name: str | None = None) -> Recipe:
    """One recipe from several strategies, e.g. ``compose(["ewc", "er"])``.

    * consolidators add up, in the order given (their penalties are summed;
      gradient hooks run in that order);
    * at most one replay memory: strategies that bring one must agree on it
      (same buffer and size), and it is then shared; ``memory`` overrides them
      all;
    * at most one pool rule (joint, cumulative, GDumb's memory pool) and one
      review schedule; ``review`` overrides the strategies' one;
    * ``curriculum`` (a schedule over the pool) and ``scorer`` (difficulty)
      are set as given.

    Conflicts raise a :class:`ConfigError` naming the conflicting strategies.
    """
    pairs = _items(strategies)
    recipes = [(n, build_strategy(n, p)) for n, p in pairs]

    consolidators = [c for _, r in recipes for c in r.consolidators]

    mem_from = [(n, r.memory) for n, r in recipes if r.memory is not None]
    if memory is None and mem_from:
        first_name, memory = mem_from[0]
        for other_name, other in mem_from[1:]:
            if not _same_memory(memory, other):
                raise ConfigError(
                    f"strategies '{first_name}' and '{other_name}' ask for different replay memories "
                    f"({memory.name} of {memory.capacity} vs {other.name} of {other.capacity}); give them the "
                    "same buffer and memory_size, or pass one shared memory.")

    pools = [(n, r.pool) for n, r in recipes if r.pool != "current"]
    if len({p for _, p in pools}) > 1:
        raise ConfigError("strategies " + " and ".join(f"'{n}' (pool {p})" for n, p in pools)
                          + " set conflicting study pools; keep only one of them.")
    pool = pools[0][1] if pools else "current"

    if review is None:
        reviews = [(n, r.review) for n, r in recipes if r.review is not None]
        if len(reviews) > 1:
            raise ConfigError("strategies " + " and ".join(f"'{n}'" for n, _ in reviews)
                              + " each bring a review schedule; keep one, or pass review= explicitly.")
        review = reviews[0][1] if reviews else None

    return Recipe(
        name=name or "+".join(n for n, _ in pairs),
        consolidators=consolidators,
        memory=memory,
        review=review,
        curriculum=curriculum,
        scorer=scorer,
        pool=pool,
        reinit=any(r.reinit for _, r in recipes),
    )


__all__ = ["STRATEGIES", "StrategyRegistry", "StrategySpec", "build_strategy", "compose", "consolidator_strategy",
           "make_consolidator", "make_memory"]
