"""The consolidator contract: habits that protect what was learned.

A consolidator adds loss terms, edits gradients or constrains parameters
around the optimiser step. It sees the learner only through the explicit
:class:`~lifelong.engine.context.Context` the loop hands it (model, optimiser,
current task, memory, device...), never through hidden shared state. One
method, one file, one small class: a new method is added by writing a file
that subclasses :class:`Consolidator` and registers it in ``CONSOLIDATORS``;
the loop does not change.

Hook order inside one training step::

    out = model(batch)                       # forward
    loss = task_loss + sum(c.penalty(ctx, batch, out))
    loss.backward()
    for c in consolidators: c.after_backward(ctx, batch)   # e.g. A-GEM projection, HFT masks
    optimiser.step()
    for c in consolidators: c.after_step(ctx)              # e.g. SI path integral

and around each task: ``before_task(ctx)`` (after the model has grown its head;
the optimiser is built right after, so parameters frozen here are never given
to it) and ``after_task(ctx)`` (e.g. EWC's Fisher).

A consolidator may also shape the optimiser: ``param_groups(model, lr)``
returns torch parameter groups (per-module learning rates, e.g. the slow
learner); :func:`lifelong.engine.optim.make_optimizer` builds the optimiser
from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from lifelong.state import load_attrs, save_attrs

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.data.examples import Examples
    from lifelong.engine.context import Context


class Consolidator:
    """Base class; every hook is optional."""

    name: ClassVar[str] = "consolidator"
    #: one line naming the method and its source, shown for its strategy (default: the docstring's first line)
    title: ClassVar[str] = ""
    #: fields the replay memory must store for this method (e.g. DER's ``logits``)
    memory_fields: ClassVar[tuple[str, ...]] = ()
    #: whether the method needs a replay memory to work (A-GEM, DER...); its strategy then brings one
    needs_memory: ClassVar[bool] = False
    #: the attributes a checkpoint saves: what the method learned (hyper-parameters come from the config)
    state_attrs: ClassVar[tuple[str, ...]] = ()

    def before_task(self, ctx: "Context") -> None:
        pass

    def penalty(self, ctx: "Context", batch: "Examples", out: Tensor) -> Tensor | None:
        """An extra loss term for this batch (a scalar tensor), or None."""
        return None

    def expects_penalty(self, ctx: "Context") -> bool:
        """Whether :meth:`penalty` must contribute (a term with a gradient path) in the current phase.

        The engine checks it on the first step of every phase and stops with a message naming the
        method, the driver and the cause when it does not: no method silently does nothing (e.g.
        a penalty computed under ``torch.no_grad``, a distillation teacher that runs the student)."""
        return False

    def after_backward(self, ctx: "Context", batch: "Examples") -> None:
        pass

    def after_step(self, ctx: "Context") -> None:
        pass

    def after_task(self, ctx: "Context") -> None:
        pass

    def param_groups(self, model: Any, lr: float) -> list[dict[str, Any]] | None:
        """Optimiser parameter groups for ``model`` at base rate ``lr`` (dicts with ``params``
        and ``lr``, as torch optimisers take them), or None to leave the optimiser alone.
        Called after ``before_task``, when the optimiser is built; only parameters that
        require grad may be listed (see :func:`lifelong.engine.optim.build_param_groups`)."""
        return None

    def memory_extras(self, ctx: "Context", examples: "Examples") -> dict[str, Tensor]:
        """Extra per-sample fields to store in memory with ``examples`` (see ``memory_fields``)."""
        return {}

    def restore_structure(self, ctx: "Context", state: dict[str, Any]) -> None:
        """On resume, before the checkpoint's weights load: re-create modules this
        method added to the model in earlier tasks (e.g. LoRA adapters), from its
        saved ``state``, so the fresh model has the checkpoint's structure."""

    def state_dict(self) -> dict[str, Any]:
        """What the method learned, by name (``state_attrs``): plain values only,
        loadable with ``torch.load(weights_only=True)`` (see :mod:`lifelong.state`)."""
        return save_attrs(self, self.state_attrs)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values (on resume, after ``before_task`` of the resumed task)."""
        load_attrs(self, self.state_attrs, state)

