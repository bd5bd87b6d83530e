"""Named continual-learning strategies: presets that build a :class:`~lifelong.engine.config.Recipe`.

A strategy is a recipe, nothing more: which consolidators run, which replay
memory is kept, which review schedule mixes it into batches and what the study
pool holds. :data:`STRATEGIES` maps names to factories ``factory(**params) ->
Recipe``; :func:`build_strategy` builds one, :func:`compose` combines several::

    from lifelong.strategies import build_strategy, compose

    er = build_strategy("er", {"memory_size": 200, "ratio": 0.5})
    ewc_er = compose(["ewc", ("er", {"memory_size": 500})])
    train_stream(stream, model, ewc_er, TrainConfig(...))

Consolidator strategies (ewc, online-ewc, si, l2, lwf, hft, agem, der, der++,
average, magmax, ema, slow-learner)
pass their params to the consolidator of the same name (see
:mod:`lifelong.consolidation`); ``lambda`` is accepted for ``lambda_``.
Strategies with a memory take ``memory_size`` (default 200), ``buffer``
(a name in :data:`lifelong.memory.BUFFERS`) and ``seed``.
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
from lifelong.registry import Registry, build

STRATEGIES: Registry[Callable[..., Recipe]] = Registry("strategy")

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


_TITLES = {
    "ewc": "EWC (Kirkpatrick et al. 2017): Fisher-weighted pull towards each past task's weights.",
    "online-ewc": "Online EWC (Schwarz et al. 2018): one running, decaying Fisher penalty.",
    "si": "Synaptic Intelligence (Zenke et al. 2017): path-integral importance, quadratic penalty.",
    "l2": "L2 pull towards the previous task's weights.",
    "lwf": "Learning without Forgetting (Li & Hoiem 2016): distil the previous model on current data.",
    "hft": "Half fine-tuning (Hui et al. 2024): each task trains a seeded random half of the parameter tensors.",
    "freeze": "Freeze named modules (default: the backbone) from a given task on.",
    "agem": "A-GEM (Chaudhry et al. 2019): project gradients that would raise the memory's loss.",
    "der": "Dark Experience Replay (Buzzega et al. 2020): match stored logits on replayed rows.",
    "lora": "LoRA per task (peft): each task trains its own low-rank adapter, then merges or keeps it.",
    "der++": "DER++ (Buzzega et al. 2020): stored-logit matching plus the label loss on replayed rows.",
    "average": "Weight averaging: after each task the model is the mean of the task-end weights.",
    "magmax": "MagMax (Marczak et al. 2024): per weight, keep the largest-magnitude task vector.",
    "ema": "EMA of the weights during training, swapped in at each task end.",
    "slow-learner": "Slow learner (SLCA, Zhang et al. 2023): per-module learning-rate multipliers, frozen embeddings.",
}


def _summary(name: str) -> str:
    return _TITLES.get(name) or next(e.summary for e in CONSOLIDATORS.entries() if e.name == name)


def _consolidator_strategy(name: str) -> Callable[..., Recipe]:
    def factory(**params: Any) -> Recipe:
        return Recipe(name=name, consolidators=[make_consolidator(name, params)])

    factory.__name__ = name.replace("-", "_").replace("+", "p")
    factory.__doc__ = f"{_summary(name)} Params: those of the '{name}' consolidator."
    return factory


def _memory_consolidator_strategy(name: str) -> Callable[..., Recipe]:
    def factory(memory_size: int = 200, buffer: str = "reservoir", seed: int = 0, **params: Any) -> Recipe:
        return Recipe(name=name, consolidators=[make_consolidator(name, params)],
                      memory=make_memory(memory_size, buffer, seed))

    factory.__name__ = name.replace("-", "_").replace("+", "p")
    factory.__doc__ = (f"{_summary(name)} Params: memory_size, buffer, seed and those of the "
                       f"'{name}' consolidator.")
    return factory


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


for _name in ("ewc", "online-ewc", "si", "l2", "lwf", "hft", "freeze", "lora", "average", "magmax", "ema",
              "slow-learner"):
    STRATEGIES.register(_name)(_consolidator_strategy(_name))
for _name in ("agem", "der", "der++"):
    STRATEGIES.register(_name)(_memory_consolidator_strategy(_name))
del _name


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


__all__ = ["STRATEGIES", "StrategySpec", "build_strategy", "compose", "make_consolidator", "make_memory"]
