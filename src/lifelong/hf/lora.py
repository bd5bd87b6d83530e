"""``lora``: one LoRA adapter per task, trained alone, then kept or merged (through ``peft``).

At each task start a fresh adapter (``task<i>``) is injected into the model in
place (``peft.inject_adapter_in_model``: the loop's model object stays the
same, no wrapper), every other parameter is frozen, and only the new adapter
trains; the loop sees that the trainable parameters changed and rebuilds the
optimiser. At the task end the adapter is

* ``merge`` (default): folded into the base weights and deleted -- the model
  keeps the same size and speed as the base model, and the next task's adapter
  starts from the updated weights;
* ``keep``: frozen and left active, stacked under the next adapters -- the
  per-task deltas stay separable (:meth:`LoRAPerTask.adapter_names`,
  :func:`set_active_adapters` can switch any of them off, ``peft`` can save
  them) at the cost of a little extra compute per adapter.

Either way earlier tasks' knowledge is only changed through the low-rank
updates of later tasks, which limits forgetting; combine with replay or EWC
(on the trainable adapter) for more. Needs ``peft`` (the ``llm`` extra); this
module imports it only when a task starts.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from torch import nn

from lifelong.consolidation._util import number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.errors import ConfigError, require

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context

MODES = ("merge", "keep")


def tuner_layers(model: nn.Module) -> list[Any]:
    """The modules of ``model`` that peft turned into adapter layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def set_active_adapters(model: nn.Module, names: Sequence[str], trainable: Sequence[str] = ()) -> None:
    """Activate adapters ``names`` in every adapter layer; only ``trainable`` ones get gradients."""
    for layer in tuner_layers(model):
        layer.set_adapter(list(names))
    marks = tuple(f".{n}." for n in trainable)
    for pname, p in model.named_parameters():
        p.requires_grad_(bool(marks) and any(m in pname for m in marks) and "lora_" in pname)


@CONSOLIDATORS.register("lora")
class LoRAPerTask(Consolidator):
    """One LoRA adapter per task (peft); only it trains; merged or kept at the task end."""

    name: ClassVar[str] = "lora"
    title: ClassVar[str] = "LoRA per task (peft): each task trains its own low-rank adapter, then merges or keeps it."

    def __init__(self, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 target_modules: Sequence[str] | str | None = None, mode: str = "merge"):
        if mode not in MODES:
            raise ConfigError(f"lora: unknown mode '{mode}'; choose one of: {', '.join(MODES)}.")
        self.rank = number("lora", "rank", rank, 1, integer=True)
        self.alpha = number("lora", "alpha", alpha, 0.0, low_open=True)
        self.dropout = number("lora", "dropout", dropout, 0.0, 1.0, high_open=True)
        self.target_modules = [target_modules] if isinstance(target_modules, str) else (
            list(target_modules) if target_modules is not None else None)
        self.mode = mode
        self.kept: list[str] = []
        self.merged: list[str] = []
        self.current: str | None = None

    def adapter_names(self) -> list[str]:
        """Adapters currently in the model (kept ones, then the one in training)."""
        return self.kept + ([self.current] if self.current else [])

    def before_task(self, ctx: "Context") -> None:
        name = f"task{ctx.phase}"
        self._inject(ctx, name)
        self.current = name
        set_active_adapters(ctx.model, self.adapter_names(), trainable=[name])

    def _inject(self, ctx: "Context", name: str) -> None:
        peft = require("peft", "llm", "The lora consolidator")
        config = peft.LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=self.dropout,
                                 target_modules=self.target_modules, bias="none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multiple adapters" and Conv1D fan-in notes are expected
            try:
                peft.inject_adapter_in_model(config, ctx.model, adapter_name=name)
            except ValueError as exc:
                raise ConfigError(f"lora: cannot add an adapter to {type(ctx.model).__name__} ({exc}); set "
                                  "target_modules to the names of its linear layers (e.g. ['c_attn'] for GPT-2, "
                                  "['q_proj', 'v_proj'] for Llama).") from None
        ctx.model.to(ctx.device)

    def after_task(self, ctx: "Context") -> None:
        name = self.current
        if name is None:
            return
        layers = tuner_layers(ctx.model)
        if self.mode == "merge":
            self.merged.append(name)
            for layer in layers:
                if name in layer.active_adapters or name in getattr(layer, "lora_A", {}):
                    layer.merge(adapter_names=[name])
            for layer in layers:
                layer.delete_adapter(name)
                layer.merged_adapters = [a for a in layer.merged_adapters if a != name]
        else:
            self.kept.append(name)
        self.current = None
        set_active_adapters(ctx.model, self.kept, trainable=[])

    def restore_structure(self, ctx: "Context", state: dict[str, Any]) -> None:
        """Re-create the adapter layers of finished tasks on a fresh model: kept
        adapters are injected again, merged ones injected and deleted (peft keeps
        the wrapper layer, whose parameter names the checkpoint uses). The adapter
        of an unfinished task is re-created by ``before_task``."""
        merged = list(state.get("merged", []))
        for name in merged + list(state["kept"]):
            self._inject(ctx, name)
        for layer in tuner_layers(ctx.model):
            for name in merged:
                layer.delete_adapter(name)
        if state["kept"]:
            set_active_adapters(ctx.model, state["kept"], trainable=[])

    def state_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept), "merged": list(self.merged), "current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept, self.current = list(state["kept"]), state["current"]
        self.merged = list(state.get("merged", []))
