"""The experiment configuration: one YAML file, validated by a pydantic schema.

A config says what to learn (``benchmark``), with what (``model``), how
(``train``, ``strategy``, ``memory``, ``review``, ``curriculum``), how to
measure it (``evaluation``), with which seed(s), on which device and where the
results go (``out``)::

    benchmark: {name: split-digits, params: {n_tasks: 5}}
    model: {name: mlp, params: {hidden: [128]}}
    train: {epochs: 3, lr: 0.05, momentum: 0.9}
    strategy: {name: ewc, params: {lambda: 100}}
    seeds: [0, 1, 2]

Every section forbids unknown keys, and every name (benchmark, model,
strategy, memory policy, schedule, scorer) is checked against its registry
while the file is validated, as are the names of its parameters: a mistake
gives one :class:`~lifelong.errors.ConfigError` that names the field path
(``strategy.params.lamda``) and lists what is allowed.

``strategy``, ``curriculum`` and ``seeds`` may be lists, and a ``grid:``
section maps dotted config keys to lists of values (a section key such as
``train`` takes mappings merged into it, each with an optional ``label``)::

    grid:
      benchmark.params.general.ratio: [0.0, 0.1, 0.25]
      train:
        - {label: rewarm, lr_scheduler: cosine, lr_scheduler_scope: task}
        - {label: one-decay, lr_scheduler: cosine, lr_scheduler_scope: stream}

Such a config is a *grid* that :meth:`ExperimentConfig.expand` turns into one
validated single-run config per combination (``lifelong compare`` runs them;
runs of one cell differ only in seed and share one label, e.g.
``naive ratio=0.1 rewarm``). The resolved config of a run
(:meth:`ExperimentConfig.resolved`, all defaults filled in) is written next to
its results as ``config.yaml`` and can be run again as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import itertools
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Union

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from lifelong.engine.config import POOLS, TrainConfig
from lifelong.errors import ConfigError

# ----------------------------------------------------------------------------- registries (lazy)


# the registries live with the registry class, so `lifelong list` reads them without this module (pydantic)
from lifelong.registry import registries as _registries  # noqa: E402


def registry(kind: str):
    """The registry of ``kind`` (benchmark, model, strategy, buffer, schedule, scorer, ...)."""
    regs = _registries()
    if kind not in regs:
        raise ConfigError(f"no {kind} registry is available in this installation.")
    return regs[kind]


class _FieldProblem(ValueError):
    """A validation problem below the field being validated (e.g. ``params.lamda``)."""

    def __init__(self, message: str, subpath: str = ""):
        super().__init__(message)
        self.subpath = subpath


def _check_name(kind: str, name: str) -> str:
    reg = registry(kind)
    if name not in reg:
        raise _FieldProblem(reg.unknown_message(name))
    return name


def parameters_of(obj: Callable, supplied: tuple[str, ...] = ()) -> tuple[list[str], bool]:
    """The keyword parameters a user may set on a registered factory/class.

    ``supplied`` are the ones the library passes itself (``seed``, ``stream``...).
    Returns ``(names, accepts_any)``; ``accepts_any`` is True for ``**kwargs``.
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return [], True
    names, any_kw = [], False
    for n, p in sig.parameters.items():
        if p.kind is p.VAR_KEYWORD:
            any_kw = True
        elif p.kind is not p.VAR_POSITIONAL and n not in supplied and n != "self":
            names.append(n)
    return names, any_kw


def _check_params(kind: str, name: str, params: dict[str, Any], field: str = "params",
                  supplied: tuple[str, ...] = ()) -> None:
    """Every key of ``params`` must be a parameter of the registered ``name``.

    ``supplied`` are parameters the library passes itself: accepted, but not
    advertised in the message. A factory taking ``**params`` that forwards
    them to the consolidator of the same name (the consolidation strategies)
    is checked against that consolidator's parameters.
    """
    obj = registry(kind).get(name)
    allowed, any_kw = parameters_of(obj)
    if any_kw and kind == "strategy":
        from lifelong.consolidation import CONSOLIDATORS

        if name in CONSOLIDATORS:
            extra, any_kw = parameters_of(CONSOLIDATORS.get(name))
            allowed += [e for e in extra if e not in allowed]
            if "lambda_" in allowed:
                allowed.append("lambda")
    if any_kw:
        return
    shown = [a for a in allowed if a not in supplied]
    for key in params:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), shown, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _FieldProblem(
                f"{kind} '{name}' has no parameter '{key}'.{hint} Its parameters are: "
                f"{', '.join(shown) or '(none)'}.", f"{field}.{key}")


# ----------------------------------------------------------------------------- sections


def _numeric(annotation: Any) -> bool:
    """True when a field holds a number (``int``, ``float``, or an optional one), not a bool."""
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_numeric(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


def _non_finite(data: Any, path: str = "") -> str | None:
    """The path of the first infinite or NaN number in plain config data (``train.lr``), if any."""
    if isinstance(data, float) and not math.isfinite(data):
        return path or "(top level)"
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = ((f"[{i}]", v) for i, v in enumerate(data))
    else:
        return None
    for key, value in items:
        sub = f"{path}{key}" if str(key).startswith("[") else (f"{path}.{key}" if path else str(key))
        found = _non_finite(value, sub)
        if found is not None:
            return found
    return None


class Section(BaseModel):
    """Base of every config section: unknown keys are an error, values are validated on assignment.

    Numbers must be finite (``.inf`` and ``.nan`` are refused) and a boolean is
    not a number (``epochs: true`` is refused instead of read as 1).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            for key, value in v.items():
                f = cls.model_fields.get(key) if isinstance(key, str) else None
                if isinstance(value, bool) and f is not None and _numeric(f.annotation):
                    raise _FieldProblem(f"must be a number, not the boolean {str(value).lower()}.", key)
        return v


class _Named(Section):
    """A section that may be written as a bare name: ``strategy: er`` means ``{name: er}``."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


class _Registered(Section):
    """A section naming a registered object (``name``) with its ``params``,
    both checked against the registry of ``_kind``; ``_supplied`` are the
    arguments the library passes itself."""

    _kind: ClassVar[str] = ""
    _supplied: ClassVar[tuple[str, ...]] = ()

    @field_validator("name", check_fields=False)
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name(cls._kind, v)

    @model_validator(mode="after")
    def _params(self):
        _check_params(self._kind, self.name, self.params, supplied=self._supplied)  # type: ignore[attr-defined]
        return self


class BenchmarkConfig(_Registered):
    """Which task stream to learn: a registered benchmark and its parameters."""

    _kind: ClassVar[str] = "benchmark"
    _supplied: ClassVar[tuple[str, ...]] = ("seed",)
    name: str = "split-digits"
    params: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(_Registered):
    """Which network to train: a registered model factory and its parameters."""

    _kind: ClassVar[str] = "model"
    _supplied: ClassVar[tuple[str, ...]] = ("stream",)
    name: str = "mlp"
    params: dict[str, Any] = Field(default_factory=dict)


#: TrainConfig fields that live elsewhere in the YAML (top level, or ``evaluation``)
_TRAIN_ELSEWHERE = ("seed", "device", "eval_every", "eval_batch_size")


def _train_section() -> type[BaseModel]:
    """The ``train`` section mirrors :class:`TrainConfig`, so the two never drift apart."""
    hints = typing.get_type_hints(TrainConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        if f.name in _TRAIN_ELSEWHERE:
            continue
        fields[f.name] = (hints[f.name], f.default)
    model = create_model("TrainSection", __base__=Section, **fields)
    model.__doc__ = "How to train: the fields of lifelong.engine.TrainConfig (epochs, steps, lr, optimizer...)."
    return model


TrainSection = _train_section()


def _split_composite(name: str) -> list[str]:
    """``'ewc+er'`` -> ``['ewc', 'er']``; a ``+`` only separates when a name follows (``der++`` stays whole)."""
    return [p for p in re.split(r"\+(?=[A-Za-z])", re.sub(r"\s+", "", name)) if p]


class StrategyConfig(_Named):
    """A continual-learning strategy (``naive``, ``ewc``, ``er``, ``der++``...) and its parameters.

    Strategies compose with ``+`` (``er+ewc``, ``ewc+der++``); the parameters of a composed
    strategy are then given per part: ``params: {ewc: {lambda: 100}}``.
    ``label`` names the runs of this strategy in comparison tables (default:
    the name, plus the parameters when a grid holds the same name twice).
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if "strategy" not in _registries():
            return v  # the strategies package is not installed yet: checked when the run is built
        for part in _split_composite(v):
            _check_name("strategy", part)
        return v

    @model_validator(mode="after")
    def _params(self) -> "StrategyConfig":
        if "strategy" not in _registries():
            return self
        parts = _split_composite(self.name)
        if len(parts) == 1:
            _check_params("strategy", self.name, self.params, supplied=_STRATEGY_SUPPLIED)
            _try_build_strategy(self.name, self.params, "params")
            return self
        for key, sub in self.params.items():
            if key not in parts:
                raise _FieldProblem(f"strategy '{self.name}' is composed of {', '.join(parts)}; give parameters per "
                                    f"part, e.g. params: {{{parts[-1]}: {{...}}}}.", f"params.{key}")
            if not isinstance(sub, dict):
                raise _FieldProblem(f"the parameters of '{key}' must be a mapping.", f"params.{key}")
            _check_params("strategy", key, sub, field=f"params.{key}", supplied=_STRATEGY_SUPPLIED)
            _try_build_strategy(key, sub, f"params.{key}")
        return self

    @property
    def parts(self) -> list[str]:
        """The strategies this entry composes (one for a plain name)."""
        return _split_composite(self.name)

    def params_for(self, part: str) -> dict[str, Any]:
        """Parameters of one part of a (possibly composed) strategy."""
        if len(self.parts) == 1:
            return dict(self.params)
        return dict(self.params.get(part, {}))

    @property
    def display(self) -> str:
        return self.label or self.name


#: arguments the library itself passes to strategy factories
_STRATEGY_SUPPLIED = ("seed",)


def _try_build_strategy(name: str, params: dict[str, Any], field: str) -> None:
    """Build the strategy once (cheap: no model, no data) so bad values fail at validation time."""
    from lifelong.registry import build

    try:
        build(registry("strategy"), name, params)
    except ConfigError as exc:
        raise _FieldProblem(str(exc), field) from None


class MemoryConfig(Section):
    """The replay memory: selection ``policy`` (reservoir, class-balanced, herding) and ``size`` in examples."""

    policy: str = "reservoir"
    size: int = Field(200, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("policy")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name("buffer", v)

    @model_validator(mode="after")
    def _params(self) -> "MemoryConfig":
        _check_params("buffer", self.policy, self.params, supplied=("capacity", "seed"))
        return self


class ReviewConfig(_Named, _Registered):
    """When old material is reviewed: a review schedule over the memory (``replay``, spaced repetition...).

    ``name`` (or ``schedule``) is a registered schedule; ``params`` its
    parameters, e.g. ``{ratio: 0.5}`` for the share of each batch replayed.
    """

    _kind: ClassVar[str] = "schedule"
    name: str = Field("replay", validation_alias=AliasChoices("name", "schedule"))
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _is_review(cls, v: str) -> str:
        """Only review schedules (they say how much of each batch to replay) may fill ``review``."""
        names = review_schedules()
        if v not in names:
            raise _FieldProblem(f"'{v}' is a curriculum schedule, not a review schedule; review takes one of: "
                                f"{', '.join(names)} (curriculum schedules go under 'curriculum').")
        return v


def review_schedules() -> list[str]:
    """Names of the registered schedules that are review schedules (subclasses of ReviewSchedule)."""
    from lifelong.curriculum.base import ReviewSchedule

    reg = registry("schedule")
    return [n for n in reg.names() if isinstance(reg.get(n), type) and issubclass(reg.get(n), ReviewSchedule)]


class CheckpointsConfig(Section):
    """How many checkpoints a run keeps: ``checkpoints/last.pt`` is always the newest; ``keep`` counts it.

    Earlier ones (``checkpoints/step-<run step>.pt``) let a diverged run go
    back further: ``lifelong run --resume DIR --from-checkpoint STEP``.
    """

    keep: int = Field(3, ge=1)


class CurriculumConfig(_Named):
    """What to study next: a schedule over the study pool, an optional difficulty scorer, the pool.

    ``name`` (or ``schedule``) is a registered schedule (``uniform``,
    ``pacing``, ``self-paced``...) with its ``params``; ``scorer`` names a
    difficulty scorer with its ``scorer_params``.

    ``pool`` is ``current`` (the task's data), ``cumulative``, ``joint`` or
    ``memory``; left unset, the strategy decides.
    """

    name: str = Field("uniform", validation_alias=AliasChoices("name", "schedule"))
    params: dict[str, Any] = Field(default_factory=dict)
    scorer: Optional[str] = None
    scorer_params: dict[str, Any] = Field(default_factory=dict)
    pool: Optional[str] = None
    label: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _check_name("schedule", v)

    @field_validator("scorer")
    @classmethod
    def _known_scorer(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        if "scorer" not in _registries():
            raise _FieldProblem("difficulty scorers are not available in this installation (lifelong.curriculum.SCORERS).")
        return _check_name("scorer", v)

    @field_validator("pool")
    @classmethod
    def _known_pool(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v not in POOLS:
            close = difflib.get_close_matches(v, POOLS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _FieldProblem(f"unknown pool '{v}'.{hint} Choose one of: {', '.join(POOLS)}.")
        return v

    @model_validator(mode="after")
    def _params(self) -> "CurriculumConfig":
        _check_params("schedule", self.name, self.params)
        if self.scorer is not None:
            _check_params("scorer", self.scorer, self.scorer_params, field="scorer_params")
        return self

    @property
    def display(self) -> str:
        return self.label or self.name


class EvaluationConfig(Section):
    """How the learner is assessed: every task after each task, and every ``eval_every`` steps for curves."""

    eval_every: int = Field(0, ge=0)
    eval_batch_size: int = Field(512, ge=1)


class TrackingConfig(Section):
    """Optional experiment trackers (the ``[tracking]`` extra): MLflow file store and TensorBoard events."""

    mlflow: bool = False
    tensorboard: bool = False


class GridPoint(Section):
    """Where a run sits in a grid with a ``grid:`` section: written by :meth:`ExperimentConfig.expand`.

    ``label`` groups the run's seeds in comparison tables and reports (the
    strategy, the curriculum when the grid varies it, and the value of every
    grid axis with more than one value: ``naive ratio=0.05 rewarm``);
    ``axes`` maps each grid key to the short text of this run's value
    (``{benchmark.params.general.ratio: ratio=0.05, train: rewarm}``).
    """

    label: str
    axes: dict[str, str] = Field(default_factory=dict)


def _as_list(v: Any) -> Any:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


class ExperimentConfig(Section):
    """One experiment, or a grid of them (lists of strategies, curricula or seeds)."""

    name: Optional[str] = None
    benchmark: BenchmarkConfig = Field(default_factory=BenchmarkConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainSection = Field(default_factory=TrainSection)  # type: ignore[valid-type]
    strategy: list[StrategyConfig] = Field(default_factory=lambda: [StrategyConfig(name="naive")])
    memory: Optional[MemoryConfig] = None
    review: Optional[ReviewConfig] = None
    curriculum: list[CurriculumConfig] = Field(default_factory=list)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    seed: int = 0
    seeds: Optional[list[int]] = None
    device: str = "auto"
    out: Optional[str] = None
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    checkpoints: CheckpointsConfig = Field(default_factory=CheckpointsConfig)
    #: grid axes beyond strategy, curriculum and seeds: a dotted config key -> the list of its values
    grid: Optional[dict[str, Any]] = None
    #: the grid cell this run is (written by expand(); read by compare and report)
    grid_point: Optional[GridPoint] = None

    @field_validator("grid")
    @classmethod
    def _grid_shape(cls, v: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
        if not v:
            return None  # an empty grid: section is no grid
        keys = list(v)
        for key, values in v.items():
            if not isinstance(key, str) or not key.strip():
                raise _FieldProblem(f"grid keys are dotted config keys such as train.lr; got {key!r}.")
            if not isinstance(values, list) or not values:
                raise _FieldProblem(f"the values of grid key '{key}' must be a non-empty list, e.g. "
                                    f"{key}: [a, b]; got {values!r}.")
            for other in keys:
                if other != key and other.startswith(key + "."):
                    raise _FieldProblem(f"grid keys '{key}' and '{other}' overlap (one sets a part of the other); "
                                        f"give {other.split('.')[-1]} inside the values of '{key}' instead.")
        return v

    @field_validator("strategy", "curriculum", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("strategy")
    @classmethod
    def _nonempty(cls, v: list[StrategyConfig]) -> list[StrategyConfig]:
        if not v:
            raise _FieldProblem("give at least one strategy (e.g. naive).")
        return v

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v == "auto" or re.fullmatch(r"(cpu|mps|cuda(:\d+)?)", v):
            return v
        raise _FieldProblem(f"unknown device '{v}'. Choose one of: auto, cpu, cuda, cuda:N, mps.")

    @model_validator(mode="after")
    def _seed_xor_seeds(self) -> "ExperimentConfig":
        if self.seeds is not None:
            if not self.seeds:
                raise _FieldProblem("seeds is an empty list; give at least one seed or use seed: N.", "seeds")
            if "seed" in self.model_fields_set and self.seed != self.seeds[0]:
                raise _FieldProblem("give either seed (one run) or seeds (a list), not both.", "seeds")
        try:  # TrainConfig's own range checks (lr > 0, epochs or steps >= 1, ...) at validation time
            self.train_config()
        except ConfigError as exc:
            raise _FieldProblem(str(exc)) from None
        return self

    @model_validator(mode="after")
    def _grid_keys(self) -> "ExperimentConfig":
        """Every grid key is a config field (up front, before any cell is built), and every axis's labels differ."""
        for key, values in (self.grid or {}).items():
            _check_grid_key(self, key, values)
            _axis(key, values)
        return self

    # ------------------------------------------------------------------ grids

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed]

    @property
    def grid_axes(self) -> list[tuple[str, list[tuple[Any, str]]]]:
        """The ``grid:`` axes in the order written: ``(key, [(value, label), ...])``; a mapping's ``label``
        is taken out of the value it names."""
        return [(key, _axis(key, values)) for key, values in (self.grid or {}).items()]

    @property
    def n_runs(self) -> int:
        """How many runs the grid expands to (1 for a single run)."""
        n = len(self.strategy) * max(1, len(self.curriculum)) * len(self.seed_list)
        for values in (self.grid or {}).values():
            n *= len(values)
        return n

    @property
    def is_grid(self) -> bool:
        return self.n_runs > 1

    def grid_summary(self) -> str:
        """What the grid varies, e.g. ``grid: 5 ratios × 3 train variants × 3 seeds = 45 runs``."""
        factors = []
        if len(self.strategy) > 1:
            factors.append(f"{len(self.strategy)} strategies")
        if len(self.curriculum) > 1:
            factors.append(f"{len(self.curriculum)} curricula")
        for key, values in self.grid_axes:
            n = len(values)
            if all(isinstance(v, dict) for v, _ in values):
                factors.append(f"{n} {key} variant{'s' if n != 1 else ''}")
            else:
                leaf = key.split(".")[-1]
                word = leaf.isalpha() and leaf.islower() and not leaf.endswith("s") and len(leaf) > 2
                factors.append(f"{n} {leaf}{'s' if n != 1 else ''}" if word else
                               f"{n} {leaf} value{'s' if n != 1 else ''}")
        seeds = len(self.seed_list)
        factors.append(f"{seeds} seed{'s' if seeds != 1 else ''}")
        return f"grid: {' × '.join(factors)} = {self.n_runs} run{'s' if self.n_runs != 1 else ''}"

    def expand(self) -> list[tuple[str, "ExperimentConfig"]]:
        """The grid as ``(run_name, single-run config)`` pairs, in a stable order.

        Strategies, then curricula, then the ``grid:`` axes in the order
        written, then seeds (the seeds of one cell are neighbours). Run names
        read ``<strategy>[-<curriculum>][-<axis value>...]-seed<N>``; a part
        appears only when the grid varies it (an axis value is
        ``<last key segment>=<value>``, or a mapping's ``label``, or its
        ``k=v`` pairs). Each cell of the ``grid:`` axes is validated as a
        config of its own; its runs carry a :class:`GridPoint` and no ``grid``.
        """
        strat_labels = _labels([s.display for s in self.strategy], self.strategy)
        curricula: list[Optional[CurriculumConfig]] = list(self.curriculum) or [None]
        cur_labels = _labels([c.display if c else "" for c in curricula], curricula)
        out: list[tuple[str, ExperimentConfig]] = []
        cells = self._grid_cells()
        axes = self.grid_axes
        for (s, sl), (c, cl), (point, cell) in itertools.product(zip(self.strategy, strat_labels),
                                                                 zip(curricula, cur_labels), cells):
            # the axes' values are shown when the axis has more than one
            shown = [lbl for (_, lbl), (_, values) in zip(point, axes) if len(values) > 1]
            cur = [cl] if len(curricula) > 1 else []
            update: dict[str, Any] = {"strategy": [s.model_copy(update={"label": sl})],
                                      "curriculum": [c.model_copy(update={"label": cl})] if c is not None else []}
            if self.grid:
                label = " ".join([sl + "".join(f" / {x}" for x in cur), *shown])
                update["grid_point"] = GridPoint(label=label, axes=dict(point))
            for seed in self.seed_list:
                name = "-".join([sl, *cur, *shown]) + f"-seed{seed}"
                single = cell.model_copy(update={**update, "seed": seed, "seeds": None, "name": name})
                out.append((_safe_name(name), single))
        return out

    def _grid_cells(self) -> list[tuple[list[tuple[str, str]], "ExperimentConfig"]]:
        """Each combination of the ``grid:`` axes as ``([(key, value label)...], validated config)``."""
        if not self.grid:
            return [([], self)]
        base = self.model_dump(mode="json", exclude={"grid", "grid_point", "seed", "seeds"})
        axes = self.grid_axes
        cells = []
        for combo in itertools.product(*(values for _, values in axes)):
            data = copy.deepcopy(base)
            point = []
            for (key, _), (value, label) in zip(axes, combo):
                _set_dotted(data, key, value)
                point.append((key, label))
            try:
                cell = validate(data)
            except ConfigError as exc:
                where = ", ".join(f"{k}={_brief(v)}" for (k, _), (v, _) in zip(axes, combo))
                problem = str(exc).removeprefix("invalid config: ")
                raise ConfigError(f"grid cell '{' '.join(lbl for _, lbl in point)}' ({where}) is not a valid "
                                  f"config: {problem}") from None
            cells.append((point, cell))
        return cells

    def single(self) -> "ExperimentConfig":
        """This config as one run; a grid is refused with a pointer to ``lifelong compare``.

        A ``grid:`` section of one cell (every axis one value) is that cell."""
        if self.is_grid:
            raise ConfigError(
                f"this config is a grid of {self.n_runs} runs (lists of strategies, curricula, seeds or grid "
                "values); run it with `lifelong compare`, or keep one strategy, one curriculum, one seed and one "
                "value per grid key for `lifelong run`.")
        if self.grid:
            (_, cell), = self.expand()
            return cell.model_copy(update={"name": self.name})
        return self

    @property
    def strategy_label(self) -> str:
        return "/".join(s.display for s in self.strategy)

    @property
    def curriculum_label(self) -> str:
        return "/".join(c.display for c in self.curriculum) or "default"

    def train_config(self) -> TrainConfig:
        """The engine's :class:`TrainConfig` for this (single-run) config."""
        fields = self.train.model_dump()
        return TrainConfig(**fields, seed=self.seed, device=self.device,
                           eval_every=self.evaluation.eval_every, eval_batch_size=self.evaluation.eval_batch_size)

    def resolved(self) -> dict[str, Any]:
        """Plain data with every default filled in, as written to a run's ``config.yaml``.

        One-element lists are written as single values and ``seeds`` of one
        run as ``seed``, so the file reads like a hand-written single run.
        """
        d = self.model_dump(mode="json")
        for key in ("strategy", "curriculum"):
            if len(d[key]) == 1:
                d[key] = d[key][0]
            elif not d[key]:
                d[key] = None
        if d["seeds"] is not None and len(d["seeds"]) == 1:
            d["seed"], d["seeds"] = d["seeds"][0], None
        if d["seeds"] is None:
            del d["seeds"]
        for key in ("grid", "grid_point"):  # only grids and their cells have them
            if d[key] is None:
                del d[key]
        return d


def _labels(names: list[str], items: list[Any]) -> list[str]:
    """Unique labels: a name used twice gets its parameters appended."""
    out = []
    for n, item in zip(names, items):
        if names.count(n) > 1 and item is not None and getattr(item, "label", None) is None:
            params = getattr(item, "params", {}) or {}
            extra = ",".join(f"{k}={v}" for k, v in sorted(params.items())) or str(len(out))
            n = f"{n}[{extra}]"
        out.append(n)
    if len(set(out)) != len(out):
        dup = sorted({x for x in out if out.count(x) > 1})
        raise ConfigError(f"the grid has runs with the same label {dup}; give each a distinct 'label'.")
    return out


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+=,\-\[\]]+", "_", name)


# ----------------------------------------------------------------------------- grid axes

#: top-level fields that are no grid key, and what to write instead
_NOT_GRID_KEYS = {
    "strategy": "strategies are an axis of their own: list them (strategy: [naive, ewc]), each with its params "
                "and label",
    "curriculum": "curricula are an axis of their own: list them (curriculum: [uniform, pacing])",
    "seed": "seeds are an axis of their own: seeds: [0, 1, 2]",
    "seeds": "seeds are an axis of their own: seeds: [0, 1, 2]",
    "name": "each run is named after its grid cell",
    "out": "every run of a grid goes under the --out folder of lifelong compare",
    "grid": "a grid cannot vary its own grid",
    "grid_point": "it is written by the grid for each run",
}


def _check_grid_key(cfg: "ExperimentConfig", key: str, values: list[Any]) -> None:
    """Refuse a grid key that names no config field (``train.lrr``), with the close matches; the keys of
    mapping values are checked the same way (``train: [{lr_schedulr: cosine}]``)."""
    target = _grid_target(cfg, key)
    for i, value in enumerate(values):
        if target == "section" and not isinstance(value, dict):
            raise _FieldProblem(f"grid key '{key}' is a section, so each of its values must be a mapping merged "
                                f"into it (e.g. {{label: a, lr: 0.1}}); value {i + 1} is {value!r}.")
        if isinstance(value, dict) and target != "free":
            for sub in value:
                if sub == "label":
                    continue
                if not isinstance(sub, str):
                    raise _FieldProblem(f"grid key '{key}': value {i + 1} has a key {sub!r} that is not a name.")
                _check_grid_key(cfg, f"{key}.{sub}", [value[sub]])


def _grid_target(cfg: "ExperimentConfig", key: str) -> str:
    """What ``key`` names: ``section`` (a config section), ``mapping`` (a dict field such as ``params``),
    ``value`` (a field) or ``free`` (inside a dict, unchecked here: each cell's validation checks it)."""
    parts = key.split(".")
    if any(not p for p in parts):
        raise _FieldProblem(f"grid key '{key}' has an empty part; write dotted config keys such as train.lr.")
    model: Any = ExperimentConfig
    for i, part in enumerate(parts):
        where = ".".join(parts[:i])
        fields = model.model_fields
        if i == 0 and part in _NOT_GRID_KEYS:
            raise _FieldProblem(f"grid key '{key}' is not allowed: {_NOT_GRID_KEYS[part]}.")
        if part not in fields:
            allowed = [f for f in fields if not (i == 0 and f in _NOT_GRID_KEYS)]
            close = difflib.get_close_matches(part, allowed, n=3)
            hint = f" Did you mean {' or '.join(repr('.'.join([*parts[:i], c])) for c in close)}?" if close else ""
            raise _FieldProblem(f"grid key '{key}' is not a config field: {where or 'the top level'} has no field "
                                f"'{part}'.{hint} Fields of {where or 'the top level'}: {', '.join(allowed)}.")
        annotation = model.model_fields[part].annotation
        inner = _unwrap(annotation)
        last = i == len(parts) - 1
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            if last:
                return "section"
            model = inner
            continue
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        is_dict = origin is dict or any(typing.get_origin(a) is dict for a in args)
        if not is_dict:
            if last:
                return "value"
            raise _FieldProblem(f"grid key '{key}' is not a config field: {'.'.join(parts[:i + 1])} holds a value, "
                                f"not a section, so it has no field '{parts[i + 1]}'.")
        if last:
            return "mapping"
        if part == "params" and i == 1:
            _check_grid_param(model, getattr(cfg, parts[0], None), key, parts[i + 1])
        return "free"
    return "value"  # pragma: no cover - the loop always returns


def _check_grid_param(model: Any, section: Any, key: str, param: str) -> None:
    """``benchmark.params.X``: X must be a parameter of the configured benchmark (likewise model, review,
    memory), as in the section's own validation."""
    kind = getattr(model, "_kind", "") or ("buffer" if model is MemoryConfig else "")
    name = getattr(section, "policy" if model is MemoryConfig else "name", None) if section is not None else None
    if not kind or not name:
        return
    supplied = getattr(model, "_supplied", ()) if model is not MemoryConfig else ("capacity", "seed")
    try:
        _check_params(kind, name, {param: None}, supplied=supplied)
    except _FieldProblem as exc:
        raise _FieldProblem(f"grid key '{key}' is not a config field: {exc}") from None


def _axis(key: str, values: list[Any]) -> list[tuple[Any, str]]:
    """``(value, label)`` for each value of a grid axis; labels must differ (they name the runs)."""
    leaf = key.split(".")[-1]
    out = []
    for value in values:
        if isinstance(value, dict):
            value = dict(value)
            label = value.pop("label", None)
            if label is None:
                label = ",".join(f"{k}={_brief(v)}" for k, v in _flat(value)) or "default"
            label = str(label)
        else:
            label = f"{leaf}={_brief(value)}"
        out.append((value, label))
    labels = [lbl for _, lbl in out]
    dup = sorted({lbl for lbl in labels if labels.count(lbl) > 1})
    if dup:
        raise _FieldProblem(f"grid key '{key}' has values with the same label {dup}; give each a distinct "
                            "'label' (mapping values) or distinct values.")
    return out


def _flat(mapping: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in mapping.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _brief(value: Any) -> str:
    """A short text of a config value for run names and labels: ``0.05``, ``true``, ``[64,64]``."""
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, (int, float, str)):
        return str(value)
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (dotted) in plain config data; a mapping merges into the mapping already there."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {"name": nxt} if isinstance(nxt, str) else {}
            node[part] = nxt
        node = nxt
    old = node.get(parts[-1])
    node[parts[-1]] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else copy.deepcopy(value)


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else copy.deepcopy(v)
    return out


# ----------------------------------------------------------------------------- errors


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model that holds the last element of ``loc`` (to list allowed keys)."""
    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
        return None
    if origin in (list, tuple):
        return _unwrap(typing.get_args(tp)[0])
    return tp


def _path(loc: tuple[Any, ...], data: Any = None) -> str:
    """``('strategy', 0, 'params')`` -> ``strategy[0].params``; the index is left out when the user
    wrote a single value where a list is also accepted (``strategy: ewc``)."""
    parts: list[str] = []
    node = data
    for p in loc:
        if isinstance(p, int) and not isinstance(node, list):
            continue  # a single value normalised to a one-element list
        if isinstance(node, dict):
            node = node.get(p)
        elif isinstance(node, list) and isinstance(p, int) and p < len(node):
            node = node[p]
        else:
            node = None
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]"] if parts else [f"[{p}]"]
        elif p.startswith("function-") or p in ("list[...]",):  # pydantic's internal union/validator tags
            continue
        else:
            parts.append(str(p))
    return ".".join(parts)


def format_errors(exc: ValidationError, source: str | None = None, data: Any = None) -> str:
    """One message for a pydantic error: each problem as ``field.path: what is wrong; what is allowed``."""
    lines = []
    seen = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        problem = ctx.get("error")
        path = _path(loc, data)
        if isinstance(problem, _FieldProblem):
            if problem.subpath:
                path = f"{path}.{problem.subpath}" if path else problem.subpath
            msg = str(problem)
        elif err["type"] == "extra_forbidden":
            model = _model_at(loc)
            allowed = list(model.model_fields) if model is not None else []
            key = str(loc[-1])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            msg = f"unknown field '{key}'.{hint} Allowed fields here: {', '.join(allowed)}."
        elif err["type"] == "missing":
            msg = "this field is required."
        else:
            msg = f"{err['msg']} (got {err.get('input')!r})" if "input" in err else err["msg"]
            msg = msg.replace("Value error, ", "")
        line = f"{path}: {msg}" if path else msg
        if line not in seen:
            seen.add(line)
            lines.append(line)
    head = f"invalid config{f' {source}' if source else ''}: "
    return head + ("; ".join(lines) if len(lines) == 1 else "\n  " + "\n  ".join(lines))


def validate(data: dict[str, Any] | None, source: str | None = None) -> ExperimentConfig:
    """Validate plain data (a parsed YAML mapping) into an :class:`ExperimentConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config{f' {source}' if source else ''}: the top level must be a mapping of "
                          f"sections ({', '.join(ExperimentConfig.model_fields)}); got {type(data).__name__}.")
    bad = _non_finite(data)
    if bad is not None:
        raise ConfigError(f"invalid config{f' {source}' if source else ''}: {bad}: numbers must be finite; "
                          ".inf and .nan are not accepted.")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, data)) from None
    except ConfigError as exc:  # raised by registries or labels outside pydantic's wrapping
        raise ConfigError(f"invalid config{f' {source}' if source else ''}: {exc}") from None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a YAML config file; a missing file or bad YAML is a ConfigError naming the file (and line)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist.")
    if p.is_dir():
        raise ConfigError(f"config file {p} is a folder; give a YAML file.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {p} is not valid YAML{where}: {problem}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections; got a {type(data).__name__}.")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to plain config data.

    ``train.lr=0.1``, ``strategy=ewc``, ``benchmark.params.n_tasks=3``,
    ``seeds=[0,1,2]``; ``grid.<dotted key>=[...]`` sets one grid axis
    (``grid.train.lr=[0.1,0.01]``). Returns a new dict; the input is not changed.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.field=value (e.g. train.lr=0.1).")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not k for k in key.split(".")):
            raise ConfigError(f"override '{item}' has an empty field name; write e.g. train.lr=0.1.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if key.startswith("grid.") and len(key) > 5:  # grid keys are dotted themselves: grid.train.lr=[0.1,0.01]
            grid = out.get("grid")
            out["grid"] = grid = dict(grid) if isinstance(grid, dict) else {}
            grid[key[5:]] = value
            continue
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if isinstance(nxt, str) and part in ("strategy", "curriculum", "review"):
                nxt = {"name": nxt}
            if nxt is None:
                nxt = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override '{item}': {'.'.join(parts[:i + 1])} is not a section "
                                  f"(it holds {nxt!r}), so it has no field '{parts[i + 1]}'.")
            node[part] = nxt
            node = nxt
        node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override and validate a YAML config file."""
    data = apply_overrides(read_yaml(path), overrides)
    return validate(data, source=str(path))


def dump_yaml(config: ExperimentConfig) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config.resolved(), sort_keys=False, allow_unicode=True)
