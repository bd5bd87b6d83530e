"""Building a run from its config: the stream, the model, the recipe, the train config and the trackers.

:func:`build_experiment` seeds and builds everything a single-run config
names; :func:`build_recipe` turns its memory, review, curriculum and strategy
sections into the engine's :class:`~lifelong.engine.Recipe`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifelong.config import ExperimentConfig


def build_recipe(cfg: ExperimentConfig, stream: Any):
    """The engine :class:`~lifelong.engine.Recipe` for a single-run config.

    The memory, review schedule, curriculum and scorer are built from their
    sections; the strategy (composed with ``+``) decides the consolidators and
    anything the config leaves unset (e.g. experience replay's memory).
    """
    from lifelong.config import parameters_of
    from lifelong.curriculum import SCHEDULES
    from lifelong.memory import BUFFERS
    from lifelong.registry import build
    from lifelong.strategies import STRATEGIES, compose

    strat = cfg.strategy[0]
    cur = cfg.curriculum[0] if cfg.curriculum else None
    memory = None
    if cfg.memory is not None and cfg.memory.size > 0:
        memory = build(BUFFERS, cfg.memory.policy, cfg.memory.params, capacity=cfg.memory.size, seed=cfg.seed)
    review = build(SCHEDULES, cfg.review.name, cfg.review.params) if cfg.review is not None else None
    curriculum = build(SCHEDULES, cur.name, cur.params) if cur is not None else None
    scorer = None
    if cur is not None and cur.scorer is not None:
        from lifelong.curriculum import SCORERS  # type: ignore[attr-defined]

        scorer = build(SCORERS, cur.scorer, cur.scorer_params)
    from lifelong.consolidation import CONSOLIDATORS

    parts = []
    for name in strat.parts:
        params = strat.params_for(name)
        # the strategy's own randomness (memory sampling, HFT's frozen half, EWC's Fisher sample)
        # follows the run's seed; consolidator presets take their consolidator's parameters
        seeded = "seed" in parameters_of(STRATEGIES.get(name))[0] or (
            name in CONSOLIDATORS and "seed" in parameters_of(CONSOLIDATORS.get(name))[0])
        if seeded:
            params.setdefault("seed", cfg.seed)
        parts.append((name, params))
    recipe = compose(parts, memory=memory, review=review, curriculum=curriculum, scorer=scorer,
                     name=strat.display)
    if cur is not None and cur.pool is not None and cur.pool != recipe.pool:
        recipe = dataclasses.replace(recipe, pool=cur.pool)  # re-validated by Recipe.__post_init__
    return recipe


@dataclass
class Built:
    """Everything a run needs, built from its config."""

    stream: Any
    model: Any
    recipe: Any
    train: Any
    objective: Any = None


def build_experiment(cfg: ExperimentConfig) -> Built:
    """Seed, then build the stream, model, recipe and train config of a single-run config.

    The model is initialised right after seeding (independently of how much
    randomness building the benchmark used), so the same seed gives the same
    initial weights whatever the benchmark.
    """
    from lifelong.data.benchmarks import make_benchmark
    from lifelong.engine.loop import seed_everything
    from lifelong.models import build_model

    train = cfg.train_config()
    seed_everything(cfg.seed)
    params = dict(cfg.benchmark.params)
    if cfg.benchmark.name == "text" and not params.get("tokenizer"):
        from lifelong.hf.models import model_tokenizer

        # a pretrained model's text is encoded with the model's own tokenizer unless one is given
        own = model_tokenizer(cfg.model.name, cfg.model.params)
        if own:
            params["tokenizer"] = own
    stream = make_benchmark(cfg.benchmark.name, cfg.seed, **params)
    seed_everything(cfg.seed)
    model = build_model(cfg.model.name, stream, **cfg.model.params)
    recipe = build_recipe(cfg, stream)
    return Built(stream, model, recipe, train)



def build_trackers(cfg: ExperimentConfig, run_dir: Path) -> list[Any]:
    """The experiment trackers (MLflow, TensorBoard) the config's ``tracking`` section asks for."""
    if not (cfg.tracking.mlflow or cfg.tracking.tensorboard):
        return []
    from lifelong.tracking import Tracker

    return [Tracker(run_dir, mlflow=cfg.tracking.mlflow, tensorboard=cfg.tracking.tensorboard,
                    run_name=cfg.name or run_dir.name, params=cfg.resolved())]

