"""Causal language models for text streams, registered in :data:`lifelong.models.MODELS`.

* ``hf-causal-lm``: any ``AutoModelForCausalLM`` by Hub name or local path;
* ``tiny-causal-lm``: a GPT-2 or Llama style model with a few layers, built
  from a config for the stream's tokenizer, saved to a temporary folder and
  loaded back through ``from_pretrained`` -- the real loading path, without a
  download (tests and the built-in ``arithmetic-skills`` example use it).

Factories take the stream (``factory(stream, **params)``) because the model's
vocabulary must cover the tokenizer the stream was encoded with
(``stream.info['tokenizer']``). This module imports transformers only inside
the factories.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from lifelong.errors import ConfigError, require
from lifelong.models.nets import MODELS

ARCHS = ("gpt2", "llama")
#: Llama-style presets (hidden, layers, heads, intermediate): ~0.1M, ~3M and ~25M parameters
#: in the transformer blocks (plus vocab x hidden for the tied embedding)
SIZES = {"tiny": (64, 2, 4, 128), "small": (256, 4, 4, 688), "medium": (512, 8, 8, 1376)}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": "auto"}


def stream_vocab_size(stream: Any) -> int | None:
    tok = (stream.info or {}).get("tokenizer") if stream is not None else None
    return len(tok) if tok is not None else None


def _check_vocab(model: nn.Module, stream: Any, name: str) -> None:
    need = stream_vocab_size(stream)
    have = model.get_input_embeddings().weight.shape[0]
    if need is not None and need > have:
        raise ConfigError(f"model '{name}' has a vocabulary of {have} tokens but the stream's tokenizer uses {need}; "
                          "encode the stream with the model's own tokenizer (text benchmark: tokenizer=<same name>).")


@MODELS.register("tiny-causal-lm")
def tiny_causal_lm(stream: Any = None, arch: str | None = None, layers: int | None = None,
                   hidden: int | None = None, heads: int | None = None, max_positions: int | None = None,
                   vocab_size: int | None = None, seed: int = 0, save_dir: str | None = None,
                   size: str | None = None, intermediate: int | None = None) -> nn.Module:
    """A small GPT-2 or Llama causal LM from a config, loaded back through ``from_pretrained``.

    ``size`` picks a Llama-style preset (``tiny``, ``small``, ``medium`` -- up
    to ~30M parameters with a few-thousand-token vocabulary); ``hidden``,
    ``layers``, ``heads`` and ``intermediate`` override its dimensions.
    Without ``size`` the default is the 2-layer, 64-wide GPT-2 of the tests."""
    transformers = require("transformers", "llm", "The tiny-causal-lm model")
    if size is not None:
        if size not in SIZES:
            raise ConfigError(f"tiny-causal-lm: unknown size '{size}'; choose one of: {', '.join(SIZES)}.")
        h, n, k, m = SIZES[size]
        arch = arch or "llama"
        hidden, layers, heads = hidden or h, layers or n, heads or k
        intermediate = intermediate or (m if hidden == h else None)
    arch = arch or "gpt2"
    hidden, layers, heads = int(hidden or 64), int(layers or 2), int(heads or 4)
    if arch not in ARCHS:
        raise ConfigError(f"tiny-causal-lm: unknown arch '{arch}'; choose one of: {', '.join(ARCHS)}.")
    if int(hidden) % int(heads):
        raise ConfigError(f"tiny-causal-lm: hidden={hidden} must be divisible by heads={heads}.")
    tok = (stream.info or {}).get("tokenizer") if stream is not None else None
    vocab = int(vocab_size or (len(tok) if tok is not None else 0))
    if vocab <= 0:
        raise ConfigError("tiny-causal-lm needs the stream's tokenizer (stream.info['tokenizer']) or vocab_size=.")
    positions = int(max_positions or max(64, 2 * int((stream.info or {}).get("max_length", 32) if stream else 32)))
    bos = getattr(tok, "bos_token_id", None) if tok is not None else None
    eos = getattr(tok, "eos_token_id", None) if tok is not None else None
    pad = getattr(tok, "pad_token_id", None) if tok is not None else None
    if arch == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=int(hidden),
                                         n_layer=int(layers), n_head=int(heads), bos_token_id=bos,
                                         eos_token_id=eos, pad_token_id=pad, resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0)
    else:
        config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=int(hidden),
                                          intermediate_size=int(intermediate or 2 * int(hidden)),
                                          num_hidden_layers=int(layers), num_attention_heads=int(heads),
                                          num_key_value_heads=int(heads), max_position_embeddings=positions,
                                          bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                                          tie_word_embeddings=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        fresh = transformers.AutoModelForCausalLM.from_config(config)
    if save_dir is not None:  # a folder from_pretrained / hf-causal-lm can load (under torchrun rank 0 writes it)
        with _quiet(transformers):
            fresh.save_pretrained(save_dir)
            if tok is not None and hasattr(tok, "to_hf"):
                tok.to_hf().save_pretrained(save_dir)
            elif tok is not None and hasattr(tok, "save_pretrained"):  # e.g. the local BPE: the folder is complete
                tok.save_pretrained(save_dir)
    # the model built from the config is the one from_pretrained would load back (same weights and outputs,
    # checked); no round trip through a folder, which only rank 0 may write in a multi-process run
    _finish(fresh, tok)
    return fresh


@MODELS.register("hf-causal-lm")
def hf_causal_lm(stream: Any = None, name_or_path: str = "", dtype: str = "float32", revision: str | None = None,
                 trust_remote_code: bool = False) -> nn.Module:
    """Any ``AutoModelForCausalLM`` by Hub name or local folder (offline: a local folder or the HF cache)."""
    transformers = require("transformers", "llm", "The hf-causal-lm model")
    if not name_or_path:
        raise ConfigError("hf-causal-lm needs name_or_path: a Hugging Face model name (e.g. 'gpt2') or a local folder.")
    if dtype not in _DTYPES:
        raise ConfigError(f"hf-causal-lm: unknown dtype '{dtype}'; choose one of: {', '.join(_DTYPES)}.")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=_DTYPES[dtype], revision=revision, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise ConfigError(f"hf-causal-lm: cannot load '{name_or_path}' ({str(exc).splitlines()[0]}); give a local "
                          "folder holding config.json and weights, or a Hub name when online.") from None
    _check_vocab(model, stream, name_or_path)
    _check_tokenizer(model, stream, name_or_path)
    _finish(model, (stream.info or {}).get("tokenizer") if stream is not None else None)
    return model


def model_tokenizer(model: str, params: dict[str, Any] | None = None) -> str | None:
    """The tokenizer a model brings: for ``hf-causal-lm`` its name or folder
    (its tokenizer lives there), else None. A text benchmark given no
    ``tokenizer`` should encode with this one."""
    if model == "hf-causal-lm":
        return (params or {}).get("name_or_path") or None
    return None


def _check_tokenizer(model: nn.Module, stream: Any, name: str) -> None:
    """Refuse a stream encoded with a tokenizer unrelated to a pretrained model's
    vocabulary (the character tokenizer, or a vocabulary larger or much smaller
    than the model's embedding): training on such ids trains on garbage."""
    tok = (stream.info or {}).get("tokenizer") if stream is not None else None
    if tok is None:
        return
    have = model.get_input_embeddings().weight.shape[0]
    fix = (f"encode the stream with the model's own tokenizer (text benchmark: tokenizer: {name}, which is the "
           "default when the model is hf-causal-lm), or give a tokenizer made for this model.")
    if hasattr(tok, "alphabet"):
        from pathlib import Path

        from lifelong.hf.tokenizer import VOCAB_FILE, CharTokenizer

        saved = Path(name) / VOCAB_FILE
        if saved.is_file() and CharTokenizer.load(saved) == tok:
            return  # the model was saved with this very character tokenizer
        raise ConfigError(f"model '{name}' is pretrained with its own vocabulary of {have} tokens, but the stream was "
                          f"encoded with the character tokenizer; {fix}")
    if len(tok) > have or len(tok) < have // 2:
        raise ConfigError(f"model '{name}' has an embedding of {have} tokens but the stream's tokenizer has "
                          f"{len(tok)}; the two do not belong together: {fix}")


@contextmanager
def _quiet(transformers: Any):
    """No progress bars while saving/loading a model of a few kilobytes."""
    log = transformers.utils.logging
    was = log.is_progress_bar_enabled()
    log.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            log.enable_progress_bar()


def _finish(model: nn.Module, tok: Any) -> None:
    """Greedy generation settings that match the tokenizer (no warnings, stop at EOS)."""
    gc = getattr(model, "generation_config", None)
    if gc is not None and tok is not None:
        eos = getattr(tok, "eos_token_id", None)
        pad = getattr(tok, "pad_token_id", None)
        gc.eos_token_id = eos
        gc.pad_token_id = pad if pad is not None else eos
    model.train()
