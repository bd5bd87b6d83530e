"""A character-level tokenizer for small generated benchmarks (needs only the standard library).

The built-in ``arithmetic-skills`` benchmark and tests must run without
downloading a tokenizer, so texts are split into single characters over a
small alphabet (digits, operators, ``=``, space...) plus four special tokens.
:meth:`CharTokenizer.save` / :meth:`CharTokenizer.load` write and read one JSON
file, and :meth:`CharTokenizer.to_hf` returns a ``transformers``
``PreTrainedTokenizer`` with the same ids, for code that expects one (the
Trainer, ``generate``, ``save_pretrained``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from lifelong.errors import DataError

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
ARITHMETIC_ALPHABET = "0123456789+-*= "
VOCAB_FILE = "lifelong_char_vocab.json"


class CharTokenizer:
    """Maps each character of ``alphabet`` to one id; ids 0-3 are pad, bos, eos, unk.

    Characters outside the alphabet become ``<unk>`` when ``strict`` is False
    and raise a :class:`DataError` otherwise (a generated benchmark should never
    produce one, so silently mapping them would hide a bug).
    """

    def __init__(self, alphabet: str = ARITHMETIC_ALPHABET, strict: bool = False):
        chars = list(dict.fromkeys(alphabet))  # de-duplicate, keep order
        self.alphabet = "".join(chars)
        self.strict = bool(strict)
        self.tokens: list[str] = list(SPECIALS) + chars
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(self.tokens)}
        self.pad_token_id, self.bos_token_id, self.eos_token_id, self.unk_token_id = 0, 1, 2, 3

    @classmethod
    def fit(cls, texts: Iterable[str], extra: str = "") -> "CharTokenizer":
        """A tokenizer whose alphabet is every character found in ``texts`` (sorted) plus ``extra``."""
        seen: set[str] = set(extra)
        for t in texts:
            seen.update(t)
        return cls("".join(sorted(seen)))

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = [self.bos_token_id] if add_bos else []
        unk = self.unk_token_id
        for ch in text:
            i = self.vocab.get(ch)
            if i is None:
                if self.strict:
                    raise DataError(f"character {ch!r} in {text!r} is not in the tokenizer's alphabet {self.alphabet!r}.")
                i = unk
            ids.append(i)
        if add_eos:
            ids.append(self.eos_token_id)
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True, stop_at_eos: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if stop_at_eos and i == self.eos_token_id:
                break
            if i < len(SPECIALS):
                if not skip_special_tokens:
                    out.append(self.tokens[i])
                continue
            out.append(self.tokens[i] if 0 <= i < len(self.tokens) else UNK)
        return "".join(out)

    # persistence ---------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        path = d / VOCAB_FILE
        path.write_text(json.dumps({"alphabet": self.alphabet, "strict": self.strict}), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory_or_file: str | os.PathLike) -> "CharTokenizer":
        p = Path(directory_or_file)
        if p.is_dir():
            p = p / VOCAB_FILE
        if not p.exists():
            raise DataError(f"no character tokenizer at '{p}'; expected a folder holding {VOCAB_FILE}.")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls(d["alphabet"], bool(d.get("strict", False)))
        except (ValueError, KeyError) as exc:
            raise DataError(f"'{p}' is not a lifelong character tokenizer file ({exc}).") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other.alphabet == self.alphabet

    def __repr__(self) -> str:
        return f"CharTokenizer(alphabet={self.alphabet!r}, vocab_size={self.vocab_size})"

    # transformers wrapper -------------------------------------------------
    def to_hf(self):
        """The same tokenizer as a ``transformers.PreTrainedTokenizer`` (ids identical)."""
        return hf_tokenizer_class()(alphabet=self.alphabet)


_HF_CLASS = None


def hf_tokenizer_class():
    """Build (once) the ``PreTrainedTokenizer`` subclass; imports transformers lazily."""
    global _HF_CLASS
    if _HF_CLASS is not None:
        return _HF_CLASS
    from lifelong.errors import require

    transformers = require("transformers", "llm", "The Hugging Face tokenizer wrapper")

    class LifelongCharTokenizer(transformers.PreTrainedTokenizer):
        """Character-level tokenizer of :mod:`lifelong.hf.tokenizer` for ``transformers``."""

        vocab_files_names = {"vocab_file": VOCAB_FILE}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, alphabet: str = ARITHMETIC_ALPHABET, vocab_file: str | None = None, **kwargs):
            if vocab_file is not None:
                alphabet = CharTokenizer.load(vocab_file).alphabet
            self.char = CharTokenizer(alphabet)
            for key, tok in (("pad_token", PAD), ("bos_token", BOS), ("eos_token", EOS), ("unk_token", UNK)):
                kwargs.setdefault(key, tok)
            super().__init__(**kwargs)

        @property
        def vocab_size(self) -> int:
            return self.char.vocab_size

        def get_vocab(self) -> dict[str, int]:
            return dict(self.char.vocab)

        def _tokenize(self, text: str, **kwargs) -> list[str]:
            return list(text)

        def _convert_token_to_id(self, token: str) -> int:
            return self.char.vocab.get(token, self.char.unk_token_id)

        def _convert_id_to_token(self, index: int) -> str:
            return self.char.tokens[index] if 0 <= index < len(self.char.tokens) else UNK

        def convert_tokens_to_string(self, tokens: list[str]) -> str:
            return "".join(tokens)

        def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
            return (str(self.char.save(save_directory)),)

    _HF_CLASS = LifelongCharTokenizer
    return _HF_CLASS


# -- a small byte-level BPE tokenizer trained locally ---------------------------------------------

#: a plain chat template whose renderings of prefixes are prefixes of the whole
#: conversation (so assistant turns can be located; see lifelong.hf.encoding)
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 2048, key: str | None = None,
                        cache: str | os.PathLike | None = None, length: int | None = None):
    """A byte-level BPE tokenizer trained on ``texts`` with the ``tokenizers``
    library, as a ``transformers.PreTrainedTokenizerFast`` (``<pad>``, ``<s>``,
    ``</s>``, ``<unk>`` are ids 0-3; a simple chat template is set).

    With ``key`` (a hash of the training data and settings) the tokenizer is
    saved under ``cache/<key>`` (default: the text cache folder's
    ``tokenizers``) and loaded from there next time instead of retrained; the
    folder is written under a temporary name and renamed into place."""
    import shutil
    import tempfile

    from lifelong.errors import ConfigError, require

    transformers = require("transformers", "llm", "The BPE tokenizer")
    tk = require("tokenizers", "llm", "The BPE tokenizer")
    if int(vocab_size) < 300:
        raise ConfigError(f"bpe tokenizer: vocab_size must be >= 300 (256 bytes + merges); got {vocab_size}.")
    folder = None
    if key is not None:
        from lifelong.hf.store import cache_root

        base = Path(cache) if cache is not None else cache_root() / "tokenizers"
        folder = base / key
        if (folder / "tokenizer.json").is_file():
            return transformers.PreTrainedTokenizerFast.from_pretrained(str(folder))
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=int(vocab_size), special_tokens=list(SPECIALS), show_progress=False,
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer, length=length)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                                unk_token=UNK)
    fast.chat_template = CHAT_TEMPLATE
    if folder is None:
        return fast
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    try:
        fast.save_pretrained(str(tmp))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process saved the same tokenizer first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return transformers.PreTrainedTokenizerFast.from_pretrained(str(folder))
