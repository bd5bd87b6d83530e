"""Policy-gradient post-training of a causal LM with an exact-match reward (REINFORCE, ReMax).

After a supervised warm-up (the first ``warmup_steps`` optimiser steps of
*each task* use the ordinary next-token loss of :class:`CausalLMObjective`, so
the model can earn some reward on a new task's format), every batch is
trained by the policy gradient instead:

1. sample ``samples`` completions per prompt from the model (no gradient,
   eval mode, temperature ``temperature``, a ``torch.Generator`` seeded from
   the run's seed, the phase and the batch counter: the same seed gives the
   same samples, and a resumed run draws what the uninterrupted one drew);
2. reward ``R`` = 1 when the sampled completion equals the reference
   completion token for token up to and including its end-of-sequence token,
   else 0 -- exactly the exact-match criterion of the assessment
   (:meth:`CausalLMObjective.correct`, :func:`lifelong.hf.measures.sample_correct_counts`);
3. advantage ``A = R - b`` with the baseline ``b``:

   * ``greedy`` (ReMax, Li et al. 2023, "ReMax: A Simple, Effective, and
     Efficient Reinforcement Learning Method for Aligning Large Language
     Models"): the reward of the greedy completion of the same prompt. It is
     read off one teacher-forced pass (greedy decoding reproduces the
     reference iff every reference token is the argmax, see
     :mod:`lifelong.hf.objective`), so it costs one forward, not a decode;
   * ``mean``: the mean reward of the prompt's ``samples`` completions (a
     group baseline; needs ``samples >= 2``);
   * ``none``: plain REINFORCE (Williams 1992), ``b = 0``;

4. loss = ``-A * sum log p(sampled completion tokens | prompt)`` (recomputed
   with gradient, at the sampling temperature, over the sampled tokens up to
   and including the first EOS), averaged over the samples of a row (the
   per-sample loss) and over the batch.

Consolidators keep working on the teacher-forced output of the batch's
reference rows (LwF distils on them, DER/A-GEM replay memory rows with their
own losses); schedules that want per-sample feedback get the supervised
per-sample loss and teacher-forced correctness of each row, the same
difficulty signal in warm-up and after it. The mean reward, the greedy
reward and the share of rows with a non-zero advantage go to the schedule log
(``rl/reward``, ``rl/greedy_reward``, ``rl/active``) at every log step.

Rows must be one prompt followed by one completion (the layout of
:func:`lifelong.hf.encoding.encode_pairs`); a chat row with several assistant
turns is refused. Sampling is our own loop over right-padded rows without a
key/value cache: a full forward per new token, fine for the short answers of
exact-match tasks, quadratic for long ones.

Selected in a config with ``train.objective: remax`` (or ``reinforce``) and
``train.rl: {warmup_steps, samples, max_new_tokens, temperature, baseline}``;
in Python, pass ``PolicyGradientObjective(stream, ...)`` as ``objective=`` to
:func:`lifelong.engine.train_stream` or to ``ContinualTrainer``.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from lifelong.data.examples import Examples
from lifelong.data.task import Stream
from lifelong.errors import ConfigError, DataError
from lifelong.hf.encoding import IGNORE, special_ids
from lifelong.hf.objective import CausalLMObjective, lm_logits, token_nll

#: ``train.objective`` values: supervised fine-tuning, or a policy gradient
OBJECTIVES = ("sft", "reinforce", "remax")
BASELINES = ("greedy", "mean", "none")


@dataclass(frozen=True)
class RLSettings:
    """The ``train.rl`` section (see the module docs)."""

    #: optimiser steps of supervised loss at the start of every task before the policy gradient
    warmup_steps: int = 0
    #: completions sampled per prompt
    samples: int = 1
    #: a bound on the reference completions' length in tokens (0 = none): a batch with a longer one is
    #: refused, since it could never be rewarded. Samples are as long as the batch's longest reference
    #: (a longer sample cannot equal it)
    max_new_tokens: int = 0
    #: sampling temperature (the log-probabilities of the gradient use it too)
    temperature: float = 1.0
    #: ``greedy`` (ReMax), ``mean`` (group mean of the samples) or ``none``
    baseline: str = "greedy"


def rl_settings(objective: str, rl: dict[str, Any] | None) -> RLSettings | None:
    """Validate ``train.objective`` with ``train.rl``; the settings, or None for ``sft``.

    ``remax`` fixes the baseline to ``greedy``; ``reinforce`` takes ``mean``
    (the default, with ``samples`` defaulting to 4) or ``none``."""
    if objective not in OBJECTIVES:
        close = difflib.get_close_matches(str(objective), OBJECTIVES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"train.objective '{objective}' is unknown.{hint} Choose one of: {', '.join(OBJECTIVES)}.")
    if objective == "sft":
        if rl:
            raise ConfigError("train.rl is set but train.objective is sft (supervised), which ignores it; set "
                              "train.objective: remax or reinforce, or remove train.rl.")
        return None
    given = dict(rl or {})
    names = [f.name for f in fields(RLSettings)]
    for key in given:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"train.rl has no setting '{key}'.{hint} Its settings are: {', '.join(names)}.")
    if objective == "remax":
        if given.get("baseline", "greedy") != "greedy":
            raise ConfigError(f"train.rl.baseline '{given['baseline']}' does not go with train.objective remax, whose "
                              "baseline is the greedy completion's reward; use train.objective: reinforce for the "
                              "mean or no baseline.")
        given["baseline"] = "greedy"
    else:
        given.setdefault("baseline", "mean")
        if given["baseline"] == "mean":
            given.setdefault("samples", 4)
    for key in ("warmup_steps", "samples", "max_new_tokens"):
        value = given.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"train.rl.{key} must be a whole number; got {value!r}.")
        if value < 0:
            raise ConfigError(f"train.rl.{key} must be >= 0; got {value}.")
    if given.get("samples", 1) < 1:
        raise ConfigError("train.rl.samples must be >= 1 (completions sampled per prompt).")
    temperature = given.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"train.rl.temperature must be a number > 0; got {temperature!r}.")
    given["temperature"] = float(temperature)
    if given["baseline"] not in BASELINES:
        raise ConfigError(f"train.rl.baseline '{given['baseline']}' is unknown; choose one of: mean, none "
                          "(or train.objective: remax for the greedy baseline).")
    if given["baseline"] == "greedy" and objective != "remax":
        raise ConfigError("train.rl.baseline greedy is ReMax; write train.objective: remax instead.")
    if given["baseline"] == "mean" and given.get("samples", 1) < 2:
        raise ConfigError(f"train.rl.baseline mean needs train.rl.samples >= 2: with {given.get('samples', 1)} "
                          "sample the baseline equals the reward, every advantage is 0 and nothing is learned.")
    return RLSettings(**given)


def advantages(rewards: Tensor, baseline: str, greedy: Tensor | None = None) -> Tensor:
    """``rewards`` ``[rows, samples]`` minus the baseline: ``greedy`` ``[rows]`` rewards, the row ``mean``, or none."""
    if baseline == "greedy":
        if greedy is None:
            raise ValueError("the greedy baseline needs the greedy rewards")
        return rewards - greedy.to(rewards.dtype).unsqueeze(1)
    if baseline == "mean":
        return rewards - rewards.mean(1, keepdim=True)
    return rewards


def completion_log_probs(logits: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """Sum over each row of ``log p(labels[t] | tokens < t)`` for the positions with a label
    (``labels`` ``[rows, L]``, ``IGNORE`` elsewhere; ``logits`` ``[rows, L', vocab]`` with
    ``L' <= L``, position t predicting token t + 1), at ``temperature``."""
    nll, _ = token_nll(logits.float() / float(temperature), labels)
    return -nll.sum(1)


def reference_layout(data: Examples) -> tuple[Tensor, Tensor]:
    """Each row's first completion position and completion length, refusing rows that are not
    one prompt followed by one completion."""
    labels = data["labels"]
    scored = labels != IGNORE
    length = scored.sum(1)
    if bool((length == 0).any()):
        raise DataError("the policy-gradient objective needs a completion in every row (labels other than -100); "
                        "a row has none.")
    width = labels.shape[1]
    pos = torch.arange(width, device=labels.device).expand_as(labels)
    start = torch.where(scored, pos, width).min(1).values
    end = torch.where(scored, pos, -1).max(1).values
    if bool((end - start + 1 != length).any()):
        raise DataError("the policy-gradient objective needs rows of one prompt then one completion; a row's "
                        "learned tokens are not contiguous (a chat with several assistant turns?). Use "
                        "train.objective: sft for such data, or one assistant turn per row.")
    if bool((start < 1).any()):
        raise DataError("the policy-gradient objective needs a prompt (at least a BOS token) before each completion.")
    return start, length


class PolicyGradientObjective(CausalLMObjective):
    """REINFORCE / ReMax with an exact-match reward after a supervised warm-up (see module docs).

    The supervised members (``forward``, ``per_sample_loss``, ``correct``,
    ``evaluate``...) are those of :class:`CausalLMObjective`; the engine asks
    :meth:`policy_active` at each batch and then trains on :meth:`policy_losses`."""

    def __init__(self, stream: Stream | None = None, tokenizer: Any = None, warmup_steps: int = 0, samples: int = 1,
                 max_new_tokens: int = 0, temperature: float = 1.0, baseline: str = "greedy", trim: bool = True):
        super().__init__(stream, tokenizer, trim)
        objective = "remax" if baseline == "greedy" else "reinforce"
        self.settings = rl_settings(objective, {"warmup_steps": warmup_steps, "samples": samples,
                                                "max_new_tokens": max_new_tokens, "temperature": temperature,
                                                "baseline": baseline})
        self.name = objective
        self._stats = torch.zeros(4, dtype=torch.float64)  # reward sum, greedy-reward sum, active rows, rows

    @classmethod
    def from_config(cls, stream: Stream, objective: str, rl: dict[str, Any] | None,
                    **kwargs: Any) -> "PolicyGradientObjective":
        """The objective of ``train.objective`` and ``train.rl`` (``kwargs``: tokenizer, trim)."""
        settings = rl_settings(objective, rl)
        if settings is None:
            raise ConfigError("PolicyGradientObjective needs train.objective remax or reinforce, not sft.")
        return cls(stream, **kwargs, **asdict(settings))

    def policy_active(self, step: int) -> bool:
        """Whether the batch at optimiser step ``step`` of the task trains by policy gradient (after warm-up)."""
        return int(step) >= self.settings.warmup_steps

    def _special(self, model: nn.Module) -> tuple[int, int]:
        if self.tokenizer is not None:
            _, eos, pad = special_ids(self.tokenizer)
            return int(eos), int(pad)
        cfg = getattr(model, "config", None)
        eos = getattr(cfg, "eos_token_id", None)
        if eos is None:
            raise DataError("the policy-gradient objective needs the end-of-sequence token: give the stream a "
                            "tokenizer (stream.info['tokenizer']) or pass tokenizer=.")
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        pad = getattr(cfg, "pad_token_id", None)
        return int(eos), int(eos if pad is None else pad)

    @torch.no_grad()
    def sample(self, model: nn.Module, data: Examples, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``samples`` completions of each row's prompt: the sequences (prompt, sampled tokens,
        padding) ``[rows * samples, L]``, their labels (the sampled tokens up to and including the
        first EOS, ``IGNORE`` elsewhere) and the sampled tokens ``[rows * samples, width]``
        (padding after EOS; ``width``: the batch's longest reference completion). Rows of one
        prompt sit next to each other."""
        s = self.settings
        eos, pad = self._special(model)
        start, length = reference_layout(data)
        need = int(length.max())
        if s.max_new_tokens and s.max_new_tokens < need:
            raise DataError(f"train.rl.max_new_tokens={s.max_new_tokens} is shorter than a reference completion of "
                            f"this batch ({need} tokens with its end-of-sequence token): such rows could never earn "
                            f"a reward. Raise it to at least {need}, or set 0 (as long as the longest reference).")
        width = need  # a longer sample cannot equal the reference
        k = s.samples
        ids = data["input_ids"].repeat_interleave(k, 0)
        start = start.repeat_interleave(k, 0)
        n = ids.shape[0]
        total = int(start.max()) + width
        seqs = torch.full((n, max(total, ids.shape[1])), pad, dtype=ids.dtype, device=ids.device)
        pos = torch.arange(seqs.shape[1], device=ids.device).expand(n, -1)
        prompt = pos < start.unsqueeze(1)
        seqs[:, : ids.shape[1]] = torch.where(prompt[:, : ids.shape[1]], ids, pad)
        tokens = torch.full((n, width), pad, dtype=ids.dtype, device=ids.device)
        done = torch.zeros(n, dtype=torch.bool, device=ids.device)
        rows = torch.arange(n, device=ids.device)
        was = model.training
        model.eval()
        try:
            for t in range(width):
                upto = int(start.max()) + t  # positions 0..upto-1 are known for every row
                mask = (pos[:, :upto] < (start + t).unsqueeze(1)).long()
                logits = lm_logits(model, seqs[:, :upto], mask)
                nxt = logits[rows, start + t - 1].float() / s.temperature
                tok = torch.multinomial(torch.softmax(nxt, dim=-1), 1, generator=generator).squeeze(1)
                tok = torch.where(done, torch.full_like(tok, pad), tok)
                tokens[:, t] = tok
                seqs[rows, start + t] = tok
                done |= tok == eos
                if bool(done.all()):
                    break
        finally:
            model.train(was)
        # labels: the sampled tokens up to and including the first EOS (all of them when none came)
        ended = (tokens == eos).long()
        before = ended.cumsum(1) - ended  # EOS tokens strictly before each position
        keep = before == 0
        labels = torch.full_like(seqs, IGNORE)
        cols = start.unsqueeze(1) + torch.arange(width, device=ids.device)
        labels.scatter_(1, cols, torch.where(keep, tokens, torch.full_like(tokens, IGNORE)))
        return seqs, labels, tokens

    def rewards(self, data: Examples, tokens: Tensor) -> Tensor:
        """1.0 where a sampled completion (``tokens`` from :meth:`sample`) equals its row's reference
        completion exactly, up to and including its EOS; ``[rows, samples]``."""
        k = self.settings.samples
        start, length = reference_layout(data)
        labels = data["labels"]
        width = int(length.max())
        cols = (start.unsqueeze(1) + torch.arange(width, device=labels.device)).clamp_max(labels.shape[1] - 1)
        ref = labels.gather(1, cols)  # reference completions, IGNORE past each row's length
        ref = torch.where(torch.arange(width, device=labels.device) < length.unsqueeze(1), ref, IGNORE)
        ref = ref.repeat_interleave(k, 0)
        hit = (tokens[:, :width] == ref) | (ref == IGNORE)  # samples are as wide as the longest reference
        return hit.all(1).float().view(-1, k)

    def policy_losses(self, model: nn.Module, out: Tensor, data: Examples, seed: int) -> Tensor:
        """Per-row policy-gradient losses ``[rows]`` of a batch (see the module docs); ``out`` is
        the batch's teacher-forced output, ``seed`` seeds the sampling."""
        s = self.settings
        ids = data["input_ids"]
        sampler_model = getattr(model, "module", model)  # sample with the bare model under DDP
        gen = torch.Generator(device=ids.device)
        gen.manual_seed(int(seed) % (2**63))
        seqs, labels, tokens = self.sample(sampler_model, data, gen)
        rewards = self.rewards(data, tokens)
        greedy = None
        if s.baseline == "greedy":
            with torch.no_grad():
                was = sampler_model.training
                sampler_model.eval()
                try:
                    greedy = self.correct(self.forward(sampler_model, data), data).float()
                finally:
                    sampler_model.train(was)
        adv = advantages(rewards, s.baseline, greedy)  # [rows, samples]
        self._stats += torch.tensor([float(rewards.mean(1).sum()),
                                     float(greedy.sum()) if greedy is not None else float("nan"),
                                     float((adv != 0).any(1).sum()), float(rewards.shape[0])], dtype=torch.float64)
        if not bool((adv != 0).any()):
            # no sample did better or worse than its baseline: zero gradient, and no forward to pay for
            return out.float().sum() * 0.0 + torch.zeros(rewards.shape[0], device=out.device)
        width = int(((labels != IGNORE).long() * torch.arange(labels.shape[1], device=labels.device)).max()) + 1
        # padding after a row's last sampled token comes after every position scored: causal attention
        # never sees it, so the mask may be all ones
        seqs, labels = seqs[:, :width], labels[:, :width]
        logp = completion_log_probs(lm_logits(model, seqs, torch.ones_like(seqs)), labels, s.temperature)
        per_sample = -adv.reshape(-1).to(logp.device) * logp
        return per_sample.view(-1, s.samples).mean(1)

    def log(self) -> dict[str, float]:
        """Mean reward, greedy reward and share of rows with a non-zero advantage since the last call."""
        reward, greedy, active, rows = self._stats.tolist()
        self._stats.zero_()
        if rows == 0:
            return {}
        row = {"rl/reward": reward / rows, "rl/active": active / rows}
        if greedy == greedy:  # not NaN: a greedy baseline
            row["rl/greedy_reward"] = greedy / rows
        return row
