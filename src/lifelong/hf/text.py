"""Text task streams from local JSONL/JSON/CSV/TSV/Parquet files or Hugging Face ``datasets``.

Each record holds a prompt and a completion, a chat conversation
(``messages``: a list of ``{role, content}``; only assistant turns are
learned, rendered with the tokenizer's chat template when it has one), or
one plain text (``text_field``; continual pre-training, optionally packed
into blocks of ``block_size`` tokens with ``pack=True``), optionally a
task/skill name and a difficulty. Records are grouped into tasks by the task
column (first-appearance order, or the order given by ``tasks``); without a
task column, each file is one task. Every task's rows are split into train and
test (``test_fraction``) unless test files are given.

Out of core: each source is read as a stream of records and tokenised once
into an Arrow file in the cache folder (:mod:`lifelong.hf.store`), keyed by
the file's content hash, the tokenizer and the settings, so a second run
opens it at once. Tasks are :class:`~lifelong.data.stored.StoredExamples`:
row references into the memory-mapped store, gathered and padded per batch;
``task.info['train_texts']`` reads the raw strings from the store on access
(for text difficulty scorers). Memory does not grow with the data.

Bad input gives one :class:`~lifelong.errors.DataError` (or ``ConfigError``)
naming the file (and record), the task and the field, and what was expected:
a missing file, an empty file, a record without a required field (listing the
fields it has), an empty record, undecodable bytes, an empty task.

Local files need the standard library and pyarrow (the ``llm`` extra); Hub
datasets (``dataset='name'``) go through ``datasets.load_dataset`` and need a
network connection (or the local HF cache).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from lifelong.data.benchmarks import BENCHMARKS
from lifelong.data.stored import StoredExamples
from lifelong.data.task import Stream, Task
from lifelong.errors import ConfigError, DataError, require
from lifelong.hf.encoding import (Packer, check_messages, encode_chat_rows, encode_pair_rows, render_chat,
                                  special_ids)
from lifelong.hf.store import (StoredTexts, TokenStore, build_store, encoded_batch, file_digest, find_store,
                               store_key, tokenizer_fingerprint)
from lifelong.hf.tokenizer import CharTokenizer, train_bpe_tokenizer

FORMATS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
BATCH = 1024  # records tokenised per call


# -- reading records (streaming) -------------------------------------------------------------

def _check_path(p: Path) -> str:
    if not p.exists():
        raise DataError(f"text file '{p}' does not exist; give the path of a .jsonl, .json, .csv, .tsv or "
                        ".parquet file.")
    if p.is_dir():
        raise DataError(f"'{p}' is a folder; give the path of a .jsonl, .json, .csv, .tsv or .parquet file.")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataError(f"text file '{p}' has an unknown extension '{p.suffix}'; use one of: {', '.join(FORMATS)}.")
    return fmt


def _bad_bytes(p: Path, line: int, exc: UnicodeDecodeError, encoding: str) -> DataError:
    return DataError(f"text file '{p}' line {line} is not valid {encoding} (byte {exc.object[exc.start]:#04x}); "
                     f"re-save the file as {encoding} or pass encoding=.")


def iter_records(path: str | Path, encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    """Records of a local JSONL, JSON (a list of objects), CSV, TSV or Parquet
    file, read as a stream (JSONL, CSV/TSV and Parquet never load the whole
    file), with one clear :class:`DataError` per problem."""
    p = Path(path)
    fmt = _check_path(p)
    count = 0
    blank = True
    if fmt == "jsonl":
        with open(p, "rb") as fh:
            for i, raw in enumerate(fh, 1):
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    raise _bad_bytes(p, i, exc, encoding) from None
                if i == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                if not line.strip():
                    continue
                blank = False
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"text file '{p}' line {i} is not valid JSON ({exc.msg}); each line must be "
                                    "one JSON object.") from None
                if not isinstance(rec, dict):
                    raise DataError(f"text file '{p}' line {i} holds a {type(rec).__name__}; each line must be one "
                                    "JSON object such as {\"prompt\": ..., \"completion\": ...}.")
                count += 1
                yield rec
    elif fmt == "json":
        raw = p.read_bytes()
        try:
            text = raw.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise _bad_bytes(p, raw[:exc.start].count(b"\n") + 1, exc, encoding) from None
        if text.strip():
            blank = False
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"text file '{p}' line {exc.lineno} is not valid JSON ({exc.msg}).") from None
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise DataError(f"text file '{p}' must hold a JSON list of objects.")
            for rec in data:
                count += 1
                yield rec
    elif fmt == "parquet":
        pq = require("pyarrow.parquet", "llm", "Reading Parquet files")
        try:
            pf = pq.ParquetFile(str(p))
        except Exception as exc:  # pyarrow raises its own error types for a bad file
            raise DataError(f"text file '{p}' is not a valid Parquet file ({str(exc).splitlines()[0]}).") from None
        blank = pf.metadata.num_rows == 0
        for batch in pf.iter_batches(batch_size=BATCH):
            for rec in batch.to_pylist():
                count += 1
                yield rec
    else:
        line = 1
        with open(p, "rb") as fb:
            fh = io.TextIOWrapper(fb, encoding="utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding,
                                  newline="")
            reader = csv.DictReader(fh, delimiter="\t" if fmt == "tsv" else ",")
            try:
                blank = not reader.fieldnames
                for rec in reader:
                    line = reader.line_num
                    count += 1
                    yield dict(rec)
            except UnicodeDecodeError as exc:
                raise _bad_bytes(p, line + 1, exc, encoding) from None
    if blank:
        raise DataError(f"text file '{p}' is empty; it needs at least one record.")
    if count == 0:
        raise DataError(f"text file '{p}' holds no records (only a header or blank lines).")


def read_records(path: str | Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """All records of a local file as a list (see :func:`iter_records`)."""
    return list(iter_records(path, encoding))


def _open_hf_dataset(name: str, split: str, config: str | None, data_files: Any = None) -> Any:
    datasets = require("datasets", "llm", "Loading Hugging Face datasets")
    try:
        return datasets.load_dataset(name, config, split=split, data_files=data_files)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DataError(f"cannot load dataset '{name}' split '{split}' ({str(exc).splitlines()[0]}); check the name, "
                        "the split and the network (offline, only local files and the HF cache work).") from None


def load_hf_dataset(name: str, split: str = "train", config: str | None = None,
                    data_files: Any = None) -> list[dict[str, Any]]:
    """Records of a Hugging Face dataset (Hub name, or a builder such as 'json' with ``data_files``)."""
    return [dict(r) for r in _open_hf_dataset(name, split, config, data_files)]


# -- records -> rows ---------------------------------------------------------------------------

class Fields:
    """Which record fields mean what, and the checks on them."""

    def __init__(self, prompt_field: str = "prompt", completion_field: str = "completion",
                 text_field: str | None = None, messages_field: str | None = "messages",
                 task_field: str | None = "task", difficulty_field: str | None = None):
        self.prompt, self.completion, self.text = prompt_field, completion_field, text_field
        self.messages, self.task, self.difficulty = messages_field, task_field, difficulty_field

    def key(self) -> dict[str, Any]:
        return dict(vars(self))

    def row(self, rec: dict[str, Any], where: str, default_task: str) -> tuple[str, str, Any, str, float]:
        """``(prompt, completion, messages or None, task, difficulty)`` of one record."""
        task = str(rec[self.task]) if self.task and rec.get(self.task) is not None else default_task
        at = f"{where} (task '{task}')"
        messages = None
        if self.text:
            prompt, completion = "", _field(rec, self.text, where)
            if not completion.strip():
                raise DataError(f"{at}: field '{self.text}' is empty; every record needs text to learn "
                                "(drop empty records).")
        elif self.messages and rec.get(self.messages) is not None and self.prompt not in rec:
            messages = check_messages(rec[self.messages], at, self.messages)
            prompt = "\n".join(m["content"] for m in messages if m["role"] != "assistant")
            completion = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
        else:
            prompt, completion = _field(rec, self.prompt, where), _field(rec, self.completion, where)
            if not prompt.strip() and not completion.strip():
                raise DataError(f"{at}: fields '{self.prompt}' and '{self.completion}' are both empty; a record "
                                "needs a completion to learn (drop empty records).")
        diff = float("nan")
        if self.difficulty:
            value = _field(rec, self.difficulty, where)
            try:
                diff = float(value)
            except ValueError:
                raise DataError(f"{at}: difficulty '{self.difficulty}' = {value!r} is not a number.") from None
        return prompt, completion, messages, task, diff


def _field(rec: dict[str, Any], name: str, where: str) -> str:
    if name not in rec or rec[name] is None:
        raise DataError(f"{where} has no field '{name}'; its fields are: {', '.join(map(str, rec)) or '(none)'}. "
                        "Set the field names (prompt_field, completion_field, text_field, messages_field, "
                        "task_field).")
    return str(rec[name])


class Source:
    """One input (a local file or a Hugging Face dataset split) and its records."""

    def __init__(self, path: str | None = None, dataset: str | None = None, split: str = "train",
                 config: str | None = None, encoding: str = "utf-8", max_rows: int | None = None,
                 data_files: Any = None):
        self.path, self.dataset, self.split, self.config = path, dataset, split, config
        self.data_files = data_files
        self.encoding, self.max_rows = encoding, max_rows
        self._ds = None
        self._identity: str | None = None
        if path is not None:
            _check_path(Path(path))

    @property
    def name(self) -> str:
        return f"text file '{self.path}'" if self.path is not None else f"dataset '{self.dataset}' split '{self.split}'"

    @property
    def default_task(self) -> str:
        return Path(self.path).stem if self.path is not None else str(self.dataset)

    def identity(self) -> str:
        """What the content of this source is: the file's hash, or the dataset's fingerprint (computed once)."""
        if self._identity is None:
            if self.path is not None:
                self._identity = "file:" + file_digest(self.path)
            else:
                self._identity = f"dataset:{self.dataset}:{self.config}:{self.split}:{self._hf()._fingerprint}"
        return self._identity

    def _hf(self) -> Any:
        if self._ds is None:
            self._ds = _open_hf_dataset(self.dataset, self.split, self.config, self.data_files)
        return self._ds

    def records(self) -> Iterator[dict[str, Any]]:
        if self.path is not None:
            it = iter_records(self.path, self.encoding)
        else:
            it = (dict(r) for r in self._hf())
        for i, rec in enumerate(it):
            if self.max_rows is not None and i >= self.max_rows:
                return
            yield rec

    def rows(self, fields: Fields) -> Iterator[tuple[str, str, Any, str, float]]:
        for i, rec in enumerate(self.records(), 1):
            yield fields.row(rec, f"{self.name} record {i}", self.default_task)


# -- tokenisation into stores -------------------------------------------------------------------

def _encode_batches(source: Source, fields: Fields, tok: Any, max_length: int, pack: bool,
                    block_size: int) -> Iterator[Any]:
    """Arrow record batches of the source's rows, tokenised ``BATCH`` records at a time."""
    import pyarrow as pa

    packer = Packer(tok, block_size) if pack else None
    buf: list[tuple[str, str, Any, str, float]] = []
    done = 0

    def encode(rows: list) -> Any:
        nonlocal done
        if packer is not None:
            return _blocks(pa, packer.add([r[1] for r in rows], [r[3] for r in rows]))
        out: list = [None] * len(rows)
        pairs = [i for i, r in enumerate(rows) if r[2] is None]
        chats = [i for i, r in enumerate(rows) if r[2] is not None]
        where = f"{source.name}"
        if pairs:
            enc = encode_pair_rows(tok, [rows[i][0] for i in pairs], [rows[i][1] for i in pairs], max_length,
                                   where, first_row=done + 1)
            for i, e in zip(pairs, enc):
                out[i] = e
        if chats:
            enc = encode_chat_rows(tok, [rows[i][2] for i in chats], max_length, where,
                                   first_row=done + 1)
            for i, e in zip(chats, enc):
                out[i] = e
        done += len(rows)
        return encoded_batch(pa, [o[0] for o in out], [o[1] for o in out], [o[2] for o in out],
                             [r[3] for r in rows], [r[4] for r in rows], [r[0] for r in rows], [r[1] for r in rows])

    for row in source.rows(fields):
        buf.append(row)
        if len(buf) >= BATCH:
            batch = encode(buf)
            buf = []
            if batch is not None:
                yield batch
    if buf:
        batch = encode(buf)
        if batch is not None:
            yield batch
    if packer is not None:
        batch = _blocks(pa, packer.finish())
        if batch is not None:
            yield batch


def _blocks(pa: Any, blocks: list[tuple[str, list[int]]]) -> Any:
    if not blocks:
        return None
    n = len(blocks)
    return encoded_batch(pa, [b for _, b in blocks], [b for _, b in blocks], [0] * n, [t for t, _ in blocks],
                         [float("nan")] * n, [""] * n, [""] * n)


def _store(source: Source, fields: Fields, tok: Any, max_length: int, pack: bool, block_size: int) -> TokenStore:
    key = store_key(source=source.identity(), tokenizer=tokenizer_fingerprint(tok), fields=fields.key(),
                    default_task=source.default_task, max_rows=source.max_rows, max_length=max_length,
                    pack=pack, block_size=block_size if pack else None)
    found = find_store(key)
    if found is not None:
        return found
    _, _, pad = special_ids(tok)
    return build_store(key, _encode_batches(source, fields, tok, max_length, pack, block_size), pad,
                       {"source": source.name})


# -- tokenizers ------------------------------------------------------------------------------------

def _texts(sources: list[Source], fields: Fields) -> Iterator[str]:
    for s in sources:
        for prompt, completion, messages, _, _ in s.rows(fields):
            yield render_chat(None, messages) if messages is not None else prompt + completion


def load_tokenizer(tokenizer: Any, texts: Any = (), bpe_vocab_size: int = 2048, key: str | None = None) -> Any:
    """'char' (a character tokenizer fitted on ``texts``), 'bpe' (a byte-level
    BPE trained on ``texts``, cached under ``key``), a tokenizer object, or a
    transformers name/path (a local folder, or a Hub name when online)."""
    if not isinstance(tokenizer, str):
        return tokenizer
    if tokenizer == "char":
        return CharTokenizer.fit(texts)
    if tokenizer == "bpe":
        return train_bpe_tokenizer(texts, bpe_vocab_size, key=key)
    transformers = require("transformers", "llm", f"The tokenizer '{tokenizer}'")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load tokenizer '{tokenizer}' ({str(exc).splitlines()[0]}); use 'char', 'bpe', "
                          "a local folder, or a Hub name when online.") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


# -- the benchmark ---------------------------------------------------------------------------------

def _paths(paths: Any) -> list[str]:
    return [str(paths)] if isinstance(paths, (str, Path)) else [str(p) for p in paths]


def _check_params(tasks: Any, max_rows: Any, test_fraction: float, max_length: int, pack: bool,
                  block_size: int, text_field: str | None) -> None:
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ConfigError(f"text benchmark: test_fraction must be in [0, 1); got {test_fraction}.")
    if int(max_length) < 4:
        raise ConfigError(f"text benchmark: max_length must be >= 4; got {max_length}.")
    if tasks is not None and (isinstance(tasks, str) or len(tasks) == 0):
        raise ConfigError("text benchmark: tasks is empty; list the task names to train on, in order "
                          "(e.g. tasks: [geo, math]), or leave tasks out to use every task in the data.")
    if max_rows is not None and (isinstance(max_rows, bool) or int(max_rows) < 1):
        raise ConfigError(f"text benchmark: max_rows={max_rows!r} must be a positive number of records per file "
                          "(leave it out to read every record).")
    if pack and not text_field:
        raise ConfigError("text benchmark: pack=true packs plain text into blocks; set text_field (the field "
                          "holding each document's text).")
    if pack and int(block_size) < 4:
        raise ConfigError(f"text benchmark: block_size must be >= 4; got {block_size}.")


def _groups(stores: list[TokenStore]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Task name -> (store index, row) arrays, tasks in first-appearance order."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for s, store in enumerate(stores):
        names, codes = store.task_codes()
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        first = {c: int(order[bounds[c]]) for c in range(len(names)) if bounds[c] < bounds[c + 1]}
        for c in sorted(first, key=first.get):
            rows = np.sort(order[bounds[c]: bounds[c + 1]])
            parts.setdefault(names[c], []).append((np.full(len(rows), s, dtype=np.int64), rows))
    return {t: (np.concatenate([a for a, _ in p]), np.concatenate([b for _, b in p])) for t, p in parts.items()}


def _view(stores: list[TokenStore], src: np.ndarray, rows: np.ndarray, width: int,
          with_difficulty: bool) -> StoredExamples:
    cols = {}
    if with_difficulty:
        diff = np.zeros(len(rows), dtype=np.float32)
        for s, store in enumerate(stores):
            sel = src == s
            if sel.any():
                diff[sel] = store.column("difficulty")[rows[sel]]
        cols["difficulty"] = torch.from_numpy(diff)
    return StoredExamples(stores, src, rows, cols, width=width)


@BENCHMARKS.register("text")
def text_stream(seed: int = 0, path: str | Sequence[str] | None = None, dataset: str | None = None,
                dataset_config: str | None = None, data_files: Any = None, split: str = "train", test_path: str | Sequence[str] | None = None,
                test_split: str | None = None, prompt_field: str = "prompt", completion_field: str = "completion",
                text_field: str | None = None, messages_field: str | None = "messages",
                task_field: str | None = "task", difficulty_field: str | None = None,
                tasks: Sequence[str] | None = None, tokenizer: Any = "char", bpe_vocab_size: int = 2048,
                max_length: int = 256, pack: bool = False, block_size: int = 128,
                test_fraction: float = 0.2, max_rows: int | None = None, encoding: str = "utf-8",
                name: str = "text", general_text: str | None = None,
                general: dict[str, Any] | None = None) -> Stream:
    """Text tasks (prompt/completion, chat messages or plain text) from local files or a Hugging Face dataset.

    Give ``path`` (one file or a list; without a task column each file is one
    task) or ``dataset`` (a Hub name, or a builder such as 'json' with
    ``data_files``; ``split``/``test_split``). ``tasks``
    selects and orders the tasks by name. ``tokenizer`` is 'char', 'bpe' (a
    byte-level BPE of ``bpe_vocab_size`` trained on the training data, cached)
    or a transformers tokenizer name/path (use the model's own). Plain text
    (``text_field``) can be packed into ``block_size``-token blocks
    (``pack=True``). ``general_text`` is a plain-text file of held-out general
    text (one passage per non-empty line) whose perplexity is measured before
    training and after each task. ``general`` mixes a general corpus into
    every task's batches: ``{path: FILE (one passage per non-empty line),
    ratio: 0.25, schedule: constant|linear-decay|loss-driven, held_out: 0.1}``
    plus the other settings of :class:`lifelong.curriculum.mixture.GeneralMixture`;
    ``ratio`` is the share of each batch's tokens, ``held_out`` the fraction of
    lines kept for the general validation loss (and, without ``general_text``,
    for the general perplexity probe). Rows are tokenised once into the cache
    folder (``$LIFELONG_CACHE``) and read from there (see the module docs).
    """
    if (path is None) == (dataset is None):
        raise ConfigError("text benchmark: give exactly one of path (local files) or dataset (a Hugging Face name).")
    _check_params(tasks, max_rows, test_fraction, max_length, pack, block_size, text_field)
    fields = Fields(prompt_field, completion_field, text_field, messages_field, task_field, difficulty_field)
    limit = None if max_rows is None else int(max_rows)

    def sources(paths: Any, hf_split: str | None) -> list[Source]:
        if dataset is not None:
            return [Source(dataset=dataset, split=hf_split or split, config=dataset_config, max_rows=limit,
                           data_files=data_files)]
        return [Source(path=p, encoding=encoding, max_rows=limit) for p in _paths(paths)]

    train_src = sources(path, split)
    test_src = sources(test_path, test_split) if (test_path is not None or test_split is not None) else []
    every = train_src + test_src
    general_lines = _general_spec(general, encoding)
    if isinstance(tokenizer, str) and tokenizer in ("char", "bpe"):
        extra = {} if general is None else {"general": file_digest(str(general["path"]))}
        tok_key = store_key(tokenizer=tokenizer, vocab=bpe_vocab_size, sources=[s.identity() for s in every],
                            fields=fields.key(), max_rows=limit, **extra)
        texts = _texts(every, fields) if general is None else itertools.chain(_texts(every, fields), general_lines)
        tok = load_tokenizer(tokenizer, texts, bpe_vocab_size, key=tok_key)
    else:
        tok = load_tokenizer(tokenizer)
    build = dict(fields=fields, tok=tok, max_length=int(max_length), pack=bool(pack), block_size=int(block_size))
    train_stores = [_store(s, **build) for s in train_src]
    test_stores = [_store(s, **build) for s in test_src]
    train_groups = _groups(train_stores)
    test_groups = _groups(test_stores) if test_src else None
    order = list(train_groups)
    if tasks is not None:
        missing = [t for t in tasks if t not in order]
        if missing:
            raise DataError(f"text benchmark: task(s) {missing} do not occur in the data; tasks found: {order}.")
        order = list(tasks)
    rng = np.random.default_rng(abs(hash_seed(seed)))
    width = 1
    splits = []
    for t in order:
        src, rows = train_groups[t]
        if test_groups is not None:
            te_src, te_rows = test_groups.get(t, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            tr_src, tr_rows = src, rows
        else:
            n = len(rows)
            k = max(1, round(n * float(test_fraction))) if test_fraction > 0 and n > 1 else 0
            perm = rng.permutation(n)
            te, tr = np.sort(perm[:k]), np.sort(perm[k:])
            te_src, te_rows, tr_src, tr_rows = src[te], rows[te], src[tr], rows[tr]
        if len(tr_rows) == 0 or len(te_rows) == 0:
            files = ", ".join(s.name for s in every)
            raise DataError(f"text benchmark: task '{t}' has {len(tr_rows)} training and {len(te_rows)} test "
                            f"records (from {files}); each task needs at least one of each (add records, raise "
                            "max_rows or change test_fraction).")
        for st, sr, stores in ((tr_src, tr_rows, train_stores), (te_src, te_rows, test_stores or train_stores)):
            for s, store in enumerate(stores):
                sel = sr[st == s]
                if len(sel):
                    width = max(width, int(store.lengths[sel].max()))
        splits.append((t, (tr_src, tr_rows), (te_src, te_rows)))
    out_tasks = []
    for t, (tr_src, tr_rows), (te_src, te_rows) in splits:
        test_stores_t = test_stores or train_stores
        train = _view(train_stores, tr_src, tr_rows, width, difficulty_field is not None)
        test = _view(test_stores_t, te_src, te_rows, width, difficulty_field is not None)
        info: dict[str, Any] = {"skill": t}
        if not pack:
            info.update({
                "train_texts": StoredTexts(train_stores, tr_src, tr_rows),
                "test_texts": StoredTexts(test_stores_t, te_src, te_rows),
                "train_prompts": StoredTexts(train_stores, tr_src, tr_rows, ("prompt",)),
                "train_completions": StoredTexts(train_stores, tr_src, tr_rows, ("completion",)),
                "test_prompts": StoredTexts(test_stores_t, te_src, te_rows, ("prompt",)),
                "test_completions": StoredTexts(test_stores_t, te_src, te_rows, ("completion",))})
        out_tasks.append(Task(t, train, test, (), info))
    general_texts = _general_texts(general_text, encoding) if general_text is not None else []
    info = {"tokenizer": tok, "max_length": width, "source": str(dataset or path),
            "general_texts": general_texts, "stores": [str(s.path) for s in train_stores + test_stores]}
    if general is not None:
        info["general"], held = _general_corpus(general, general_lines, tok, int(max_length), seed)
        if not general_texts:
            info["general_texts"] = held
    return Stream(name, out_tasks, scenario="domain", kind="lm", info=info)


def _general_spec(general: Any, encoding: str) -> list[str]:
    """The lines of the ``general`` corpus (none without one), after checking its settings."""
    if general is None:
        return []
    if not isinstance(general, dict) or "path" not in general:
        raise ConfigError("text benchmark: general must be a mapping with a path, e.g. "
                          "{path: general.txt, ratio: 0.25, schedule: constant}.")
    from lifelong.curriculum.mixture import SETTINGS

    unknown = sorted(set(general) - {"path", "held_out", "max_length", *SETTINGS})
    if unknown:
        raise ConfigError(f"text benchmark: unknown general setting(s) {unknown}; use path, held_out, max_length, "
                          f"{', '.join(SETTINGS)}.")
    held = general.get("held_out", 0.1)
    if not 0.0 <= float(held) < 1.0:
        raise ConfigError(f"text benchmark: general.held_out must be in [0, 1); got {held}.")
    return _general_texts(str(general["path"]), encoding)


def _general_corpus(general: dict[str, Any], lines: list[str], tok: Any, max_length: int,
                    seed: int) -> tuple[dict[str, Any], list[str]]:
    """``stream.info["general"]`` (training rows, held-out rows, settings) and the held-out lines."""
    from lifelong.hf.encoding import encode_pairs

    held = float(general.get("held_out", 0.1))
    n = len(lines)
    k = min(n - 1, max(1, round(n * held))) if held > 0 and n > 1 else 0
    perm = np.random.default_rng(abs(hash_seed(seed)) ^ 0x9E37).permutation(n)
    test_lines = [lines[i] for i in sorted(perm[:k])]
    train_lines = [lines[i] for i in sorted(perm[k:])]
    limit = int(general.get("max_length", max_length))
    spec = {k2: v for k2, v in general.items() if k2 not in ("path", "held_out", "max_length")}
    spec["path"] = str(general["path"])
    spec["train"] = encode_pairs(tok, [""] * len(train_lines), train_lines, max_length=limit, source="general corpus")
    spec["test"] = (encode_pairs(tok, [""] * len(test_lines), test_lines, max_length=limit, source="general corpus")
                    if test_lines else None)
    return spec, test_lines


def hash_seed(seed: int) -> int:
    """A stable 63-bit seed for the train/test split of ``seed`` (independent of PYTHONHASHSEED)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"text/{seed}".encode()).digest()[:8], "little") >> 1


def _general_texts(path: str, encoding: str) -> list[str]:
    """Non-empty lines of a held-out general-text file, with clear errors."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"text benchmark: general_text file '{p}' does not exist; give a plain-text file "
                        "with one passage per line.")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding=encoding).splitlines() if ln.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(f"text benchmark: general_text file '{p}' is not valid {encoding} "
                        f"(byte {exc.start}); re-save it as {encoding} or set encoding.") from None
    if not lines:
        raise DataError(f"text benchmark: general_text file '{p}' is empty; give at least one passage.")
    return lines


__all__ = ["text_stream", "iter_records", "read_records", "load_hf_dataset", "load_tokenizer", "Fields", "Source"]
