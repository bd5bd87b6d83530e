"""What can train vectorised, and which runs can share one stack.

Two levels of checks:

* :func:`vectorizable` looks at configs only (cheap: nothing is built) and
  groups the runs that may share a stack: same benchmark and model, same
  batch schedule (batch size, epochs or steps, replay share, memory size),
  same strategy structure. They may differ in seed (initialisation, data
  split and order, memory sampling) and in scalar hyper-parameters (learning
  rate, momentum, weight decay, penalty weights such as EWC's lambda or
  DER's alpha and beta, EWC's Fisher sample). Every other run gets a reason.
* :func:`check_runs` looks at built runs (streams, models, recipes) before
  training them together, and lists what would stop them.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

#: strategies with a vectorised form (consolidators with a stacked penalty, replay, pool rules)
SUPPORTED_STRATEGIES = ("naive", "er", "ewc", "online-ewc", "l2", "si", "lwf", "der", "der++", "cumulative", "joint")
#: strategy parameters that may differ between runs of one stack (scalars that do not change shapes)
SCALAR_PARAMS = ("lambda", "lambda_", "alpha", "beta", "gamma", "c", "xi", "temperature", "samples", "fisher_batch",
                 "seed")
#: train settings that may differ between runs of one stack
SCALAR_TRAIN = ("lr", "momentum", "weight_decay", "log_every", "eval_every", "checkpoint_every")


def _config_reason(cfg: Any) -> str | None:
    """Why a single-run config cannot train vectorised (None if it can, as far as configs tell)."""
    if cfg.is_grid:
        return "a grid config: expand it first (ExperimentConfig.expand())"
    if cfg.model.name != "mlp":
        return f"model '{cfg.model.name}' has no vectorised form (only mlp)"
    if float(cfg.model.params.get("dropout", 0.0) or 0.0) > 0:
        return "the model uses dropout (each run would need its own dropout masks)"
    for part in cfg.strategy[0].parts:
        if part not in SUPPORTED_STRATEGIES:
            return (f"strategy '{part}' has no vectorised form (supported: {', '.join(SUPPORTED_STRATEGIES)})")
    train = cfg.train
    if train.optimizer != "sgd":
        return f"optimizer '{train.optimizer}' (only sgd is vectorised)"
    if train.amp or train.precision not in ("auto", "fp32"):
        return "mixed precision (train.amp / train.precision)"
    if train.grad_clip > 0 or train.max_grad_norm > 0:
        return "gradient clipping (train.grad_clip / train.max_grad_norm) needs each run's own gradient norm"
    if train.lr_scheduler != "constant" or train.warmup_steps or train.warmup_ratio:
        return "a learning-rate schedule (train.lr_scheduler / warmup) is not vectorised"
    if train.gradient_accumulation_steps != 1:
        return "gradient accumulation (train.gradient_accumulation_steps) is not vectorised"
    if train.gradient_checkpointing:
        return "gradient checkpointing (train.gradient_checkpointing)"
    if train.objective != "sft":
        return f"train.objective {train.objective} (a policy gradient over sampled completions)"
    if (cfg.benchmark.params or {}).get("general"):
        return "general-data mixture (benchmark params 'general')"
    if cfg.review is not None and cfg.review.name != "replay":
        return f"review schedule '{cfg.review.name}' adapts to each run's quizzes or losses"
    for cur in cfg.curriculum:
        if cur.name != "uniform" or cur.scorer is not None:
            return f"curriculum '{cur.name}' draws per-sample schedules that differ per run"
        if cur.pool == "memory":
            return "the memory pool (GDumb)"
    if cfg.tracking.mlflow or cfg.tracking.tensorboard:
        return "experiment tracking (mlflow/tensorboard) is per process"
    return None


def _group_key(cfg: Any) -> str:
    """Runs with equal keys may share a stack."""
    strat = cfg.strategy[0]
    structure = {part: {k: v for k, v in strat.params_for(part).items() if k not in SCALAR_PARAMS}
                 for part in strat.parts}
    train = {k: v for k, v in cfg.train.model_dump(mode="json").items() if k not in SCALAR_TRAIN}
    key = {
        "benchmark": cfg.benchmark.model_dump(mode="json"),
        "model": cfg.model.model_dump(mode="json"),
        "train": train,
        "strategy": [strat.parts, structure],
        "memory": cfg.memory.model_dump(mode="json") if cfg.memory is not None else None,
        "review": cfg.review.model_dump(mode="json") if cfg.review is not None else None,
        "curriculum": [c.model_dump(mode="json", exclude={"label"}) for c in cfg.curriculum],
        "device": cfg.device,
        "eval_batch_size": cfg.evaluation.eval_batch_size,
    }
    return json.dumps(key, sort_keys=True, default=str)


def vectorizable(configs: Sequence[Any]) -> tuple[list[list[int]], dict[int, str]]:
    """Group single-run configs that can train as one stack.

    Returns ``(groups, reasons)``: ``groups`` lists indices into ``configs``
    (runs of a group train together; a group may hold one run), ``reasons``
    maps each excluded index to why it cannot train vectorised, for the caller
    to run in processes instead. Nothing is built; :func:`check_runs` does the
    remaining checks on the built runs (e.g. equal task sizes across seeds).
    """
    groups: dict[str, list[int]] = {}
    reasons: dict[int, str] = {}
    for i, cfg in enumerate(configs):
        why = _config_reason(cfg)
        if why is not None:
            reasons[i] = why
            continue
        groups.setdefault(_group_key(cfg), []).append(i)
    return list(groups.values()), reasons


def data_signature(stream: Any, recipe: Any) -> tuple:
    """What must be equal between built runs of one stack: the shape of every batch schedule."""
    from lifelong.engine.phase import phase_pools

    sizes = tuple(sum(stream[i].num_train for i in ph) for ph in phase_pools(stream, recipe))
    return (stream.kind, stream.scenario, len(stream), tuple(stream.input_shape), stream.num_classes, sizes)


def check_runs(specs: Sequence[Any]) -> list[str]:
    """Problems that stop the built runs ``specs`` (:class:`~lifelong.vectorized.trainer.RunSpec`) from
    training together; an empty list when they can."""
    from lifelong.curriculum.basic import Uniform, UniformReplay
    from lifelong.vectorized.penalties import stacked_penalties
    from lifelong.vectorized.stacked import Unsupported, compile_model

    problems: list[str] = []
    if not specs:
        return ["no runs given"]
    first = specs[0]
    if first.stream.kind != "classification":
        problems.append("language-model streams have no vectorised form")
    sigs = {data_signature(s.stream, s.recipe) for s in specs}
    if len(sigs) != 1:
        problems.append("the runs' streams differ in shape (scenario, tasks, input shape or task sizes)")
    for what, values in (
        ("pool rule", {s.recipe.pool for s in specs}),
        ("batch size", {s.config.batch_size for s in specs}),
        ("epochs/steps", {(s.config.epochs, s.config.steps) for s in specs}),
        ("reset_optimizer", {s.config.reset_optimizer for s in specs}),
        ("device", {s.config.device for s in specs}),
        ("memory", {None if s.recipe.memory is None else (type(s.recipe.memory), s.recipe.memory.capacity)
                    for s in specs}),
        ("review", {None if s.recipe.review is None else (type(s.recipe.review), s.recipe.review.ratio)
                    for s in specs}),
        ("consolidators", {tuple(type(c) for c in s.recipe.consolidators) for s in specs}),
    ):
        if len(values) != 1:
            problems.append(f"the runs differ in {what}")
    for s in specs:
        recipe, cfg = s.recipe, s.config
        if recipe.pool == "memory" or recipe.reinit:
            problems.append("the memory pool and re-initialisation (GDumb)")
        if recipe.curriculum is not None and type(recipe.curriculum) is not Uniform or recipe.scorer is not None:
            problems.append("a curriculum other than uniform")
        if recipe.review is not None and type(recipe.review) is not UniformReplay:
            problems.append(f"review schedule '{recipe.review.name}'")
        if cfg.optimizer != "sgd" or cfg.amp or cfg.grad_clip > 0:
            problems.append("an optimiser setting other than plain SGD (adam, amp or grad_clip)")
        try:
            compile_model(s.model)
        except Unsupported as exc:
            problems.append(str(exc))
        if s.stream.scenario == "task" and any(c.name == "lwf" for c in recipe.consolidators):
            problems.append("LwF in the task-incremental scenario (it re-runs the model over every class seen)")
        head = getattr(s.model, "head", None)
        need = 1 + max((c for t in s.stream.tasks for c in t.classes), default=-1)
        if head is not None and head.out_features < need:
            problems.append("the model's head would be re-allocated as classes arrive")
    try:
        stacked_penalties([list(s.recipe.consolidators) for s in specs], first.config.batch_size)
    except ValueError as exc:
        problems.append(str(exc))
    shapes = {tuple((n, tuple(p.shape)) for n, p in s.model.named_parameters()) for s in specs}
    if len(shapes) != 1:
        problems.append("the runs' models have different parameter shapes")
    return list(dict.fromkeys(problems))
