"""Hugging Face language models in lifelong.

* :mod:`lifelong.hf.arithmetic` -- the offline ``arithmetic-skills`` benchmark (torch only);
* :mod:`lifelong.hf.text` -- text task streams from JSONL/CSV files or ``datasets`` (the ``text`` benchmark);
* :mod:`lifelong.hf.tokenizer`, :mod:`lifelong.hf.encoding` -- character tokenizer, prompt/completion tensors;
* :mod:`lifelong.hf.objective` -- ``CausalLMObjective`` (exact match, token loss, perplexity, distillation);
* :mod:`lifelong.hf.models` -- ``hf-causal-lm`` and ``tiny-causal-lm`` model factories;
* :mod:`lifelong.hf.lora` -- the ``lora`` consolidator (one adapter per task, via peft);
* :mod:`lifelong.hf.trainer` -- ``ContinualTrainer``: any ``transformers.Trainer`` follows lifelong schedules.

Nothing is imported here: ``transformers`` and ``peft`` load only when a model,
tokenizer wrapper, adapter or Trainer is actually used.
"""
