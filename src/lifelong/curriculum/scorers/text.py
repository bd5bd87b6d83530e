"""Text difficulty metrics, from "Beyond Random Sampling: Efficient Language
Model Pretraining via Curriculum Learning", which found compression ratio,
lexical diversity and readability the most useful difficulty signals.

Plain functions over ``list[str]`` plus scorers that read the raw strings from
``task.info["train_texts"]`` (one per training example). All scorers return
higher = harder:

* ``length``: words per text (or characters with ``unit: chars``);
* ``compression``: zlib-compressed size / raw size; redundant text compresses
  well (low ratio, easy), varied text does not (high ratio, hard);
* ``diversity``: type/token ratio (distinct words / words);
* ``readability``: minus the Flesch reading ease, 206.835 - 1.015 words per
  sentence - 84.6 syllables per word, with syllables counted by our own
  vowel-group heuristic.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.scorers.base import SCORERS, Scorer
from lifelong.data.task import Task
from lifelong.errors import ConfigError, DataError

_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE_END = re.compile(r"[.!?]+")
_VOWELS = re.compile(r"[aeiouy]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def text_length(texts: list[str], unit: str = "words") -> list[float]:
    """Length of each text in words (or characters)."""
    if unit == "chars":
        return [float(len(t)) for t in texts]
    return [float(len(words(t))) for t in texts]


def compression_ratio(texts: list[str]) -> list[float]:
    """zlib-compressed bytes / raw bytes for each text (0 for an empty text)."""
    out = []
    for t in texts:
        raw = t.encode("utf-8")
        out.append(len(zlib.compress(raw, 9)) / len(raw) if raw else 0.0)
    return out


def type_token_ratio(texts: list[str]) -> list[float]:
    """Distinct words / words for each text (0 for a text without words)."""
    out = []
    for t in texts:
        w = words(t)
        out.append(len(set(w)) / len(w) if w else 0.0)
    return out


def count_syllables(word: str) -> int:
    """Vowel groups, minus a silent final 'e' (not in '-le' after a consonant); at least 1."""
    w = word.lower().strip("'")
    if not w:
        return 0
    n = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    elif w.endswith("le") and len(w) > 2 and w[-3] in "aeiouy" and n > 1:
        n -= 1
    return max(1, n)


def flesch_reading_ease(texts: list[str]) -> list[float]:
    """Flesch reading ease per text (higher = easier); 0 for a text without words."""
    out = []
    for t in texts:
        w = words(t)
        if not w:
            out.append(0.0)
            continue
        sentences = max(1, len([s for s in _SENTENCE_END.split(t) if _WORD.search(s)]))
        syllables = sum(count_syllables(x) for x in w)
        out.append(206.835 - 1.015 * len(w) / sentences - 84.6 * syllables / len(w))
    return out


def train_texts(task: Task) -> list[str]:
    texts = task.info.get("train_texts") if task.info else None
    if texts is None:
        raise DataError(f"task '{task.name}' has no info['train_texts'] (the raw training strings) that text "
                        "difficulty scorers read; use a text task or another scorer.")
    if len(texts) != task.num_train:
        raise DataError(f"task '{task.name}' has {len(texts)} train_texts for {task.num_train} training examples; "
                        "give one string per example.")
    return [str(t) for t in texts]


class TextScorer(Scorer):
    def __init__(self) -> None:
        super().__init__(0)

    def values(self, texts: list[str]) -> list[float]:
        raise NotImplementedError

    def score(self, task: Task, ctx: Any = None) -> Tensor:
        return torch.tensor(self.values(train_texts(task)), dtype=torch.float32)


@SCORERS.register("length")
class LengthScorer(TextScorer):
    """Text length: longer texts are harder (`unit` words or chars)."""

    name: ClassVar[str] = "length"

    def __init__(self, unit: str = "words") -> None:
        super().__init__()
        if unit not in ("words", "chars"):
            raise ConfigError(f"length scorer unit '{unit}' is unknown; choose one of: words, chars.")
        self.unit = unit

    def values(self, texts: list[str]) -> list[float]:
        return text_length(texts, self.unit)


@SCORERS.register("compression")
class CompressionScorer(TextScorer):
    """zlib compression ratio: less compressible (less redundant) texts are harder."""

    name: ClassVar[str] = "compression"

    def values(self, texts: list[str]) -> list[float]:
        return compression_ratio(texts)


@SCORERS.register("diversity")
class DiversityScorer(TextScorer):
    """Lexical diversity (type/token ratio): more varied vocabulary is harder."""

    name: ClassVar[str] = "diversity"

    def values(self, texts: list[str]) -> list[float]:
        return type_token_ratio(texts)


@SCORERS.register("readability")
class ReadabilityScorer(TextScorer):
    """Readability: minus Flesch reading ease (our syllable heuristic), so harder-to-read is harder."""

    name: ClassVar[str] = "readability"

    def values(self, texts: list[str]) -> list[float]:
        return [-v for v in flesch_reading_ease(texts)]
