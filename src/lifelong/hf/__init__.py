"""Hugging Face language models in lifelong.

* :mod:`lifelong.hf.arithmetic` -- the offline ``arithmetic-skills`` benchmark (torch only);
* :mod:`lifelong.hf.text` -- text task streams from JSONL/CSV files or ``datasets`` (the ``text`` benchmark);
* :mod:`lifelong.hf.tokenizer`, :mod:`lifelong.hf.encoding` -- character tokenizer, prompt/completion tensors;
* :mod:`lifelong.hf.objective` -- ``CausalLMObjective`` (exact match, token loss, perplexity, distillation);
* :mod:`lifelong.hf.rl` -- ``PolicyGradientObjective``: REINFORCE / ReMax with an exact-match reward;
* :mod:`lifelong.hf.models` -- ``hf-causal-lm`` and ``tiny-causal-lm`` model factories;
* :mod:`lifelong.hf.lora` -- the ``lora`` consolidator (one adapter per task, via peft);
* :mod:`lifelong.hf.trainer` -- ``ContinualTrainer``: any ``transformers.Trainer`` follows lifelong schedules.

Importing this package registers its benchmarks (``arithmetic-skills``,
``text``), models (``tiny-causal-lm``, ``hf-causal-lm``) and consolidator
(``lora``) in the core registries, which import it by themselves the first
time one of those names is asked for; the core never imports it at module
level. Everything here imports only torch: ``transformers``, ``peft`` and
``datasets`` load when a model, tokenizer wrapper, adapter, dataset or Trainer
is actually used. ``ContinualTrainer`` is imported on first access.
"""

from lifelong.hf.tokenizer import CharTokenizer
from lifelong.hf.objective import CausalLMObjective
from lifelong.hf.rl import PolicyGradientObjective

# registrations, one line per module (the import registers its entries)
from lifelong.hf.arithmetic import arithmetic_skills
from lifelong.hf.text import text_stream
from lifelong.hf.models import hf_causal_lm, tiny_causal_lm
from lifelong.hf.lora import LoRAPerTask

__all__ = ["CharTokenizer", "CausalLMObjective", "PolicyGradientObjective", "arithmetic_skills", "text_stream", "hf_causal_lm",
           "tiny_causal_lm", "LoRAPerTask", "ContinualTrainer"]


def __getattr__(name: str):
    # The Trainer integration is the one module that may grow heavy imports; load it when named.
    if name == "ContinualTrainer":
        from lifelong.hf.trainer import ContinualTrainer

        return ContinualTrainer
    raise AttributeError(f"module 'lifelong.hf' has no attribute {name!r}")
