"""Text task streams from local JSONL/JSON/CSV/TSV files or Hugging Face ``datasets``.

Each record holds a prompt and a completion (or one plain text), optionally a
task/skill name and a difficulty. Records are grouped into tasks by the task
column (first-appearance order, or the order given by ``tasks``); without a
task column, each file is one task. Every task's rows are split into train and
test (``test_fraction``) unless test files are given, then tokenised into
``input_ids`` / ``attention_mask`` / ``labels`` (``-100`` on prompts and
padding) with one sequence length for the whole stream (see
:mod:`lifelong.hf.encoding`). ``task.info['train_texts']`` keeps the raw
training strings for text difficulty scorers.

Bad input gives one :class:`~lifelong.errors.DataError` naming the file (and
line) and what was expected: a missing file, an empty file, a record without
a required field (listing the fields it has), undecodable bytes.

Local files need only the standard library; Hub datasets (``dataset='name'``)
go through ``datasets.load_dataset`` and need the ``llm`` extra and a network
connection (or the local HF cache).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any, Sequence

import torch

from lifelong.data.benchmarks import BENCHMARKS
from lifelong.data.task import Stream, Task
from lifelong.errors import ConfigError, DataError, require
from lifelong.hf.encoding import encode_pairs, pair_lengths
from lifelong.hf.tokenizer import CharTokenizer

FORMATS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}


def _line_of_offset(raw: bytes, offset: int) -> int:
    return raw[:offset].count(b"\n") + 1


def read_records(path: str | Path, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Records of a local JSONL, JSON (a list of objects), CSV or TSV file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"text file '{p}' does not exist; give the path of a .jsonl, .json, .csv or .tsv file.")
    if p.is_dir():
        raise DataError(f"'{p}' is a folder; give the path of a .jsonl, .json, .csv or .tsv file.")
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DataError(f"text file '{p}' has an unknown extension '{p.suffix}'; use one of: {', '.join(FORMATS)}.")
    raw = p.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"text file '{p}' line {_line_of_offset(raw, exc.start)} is not valid {encoding} "
                        f"(byte {raw[exc.start]:#04x}); re-save the file as {encoding} or pass encoding=.") from None
    if not text.strip():
        raise DataError(f"text file '{p}' is empty; it needs at least one record.")
    if text.startswith("\ufeff"):
        text = text[1:]
    records: list[dict[str, Any]] = []
    if fmt == "jsonl":
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"text file '{p}' line {i} is not valid JSON ({exc.msg}); each line must be one "
                                "JSON object.") from None
            if not isinstance(rec, dict):
                raise DataError(f"text file '{p}' line {i} holds a {type(rec).__name__}; each line must be one "
                                "JSON object such as {\"prompt\": ..., \"completion\": ...}.")
            records.append(rec)
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"text file '{p}' line {exc.lineno} is not valid JSON ({exc.msg}).") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"text file '{p}' must hold a JSON list of objects.")
        records = data
    else:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if fmt == "tsv" else ",")
        records = [dict(r) for r in reader]
    if not records:
        raise DataError(f"text file '{p}' holds no records (only a header or blank lines).")
    return records


def load_hf_dataset(name: str, split: str = "train", config: str | None = None,
                    data_files: Any = None) -> list[dict[str, Any]]:
    """Records of a Hugging Face dataset (Hub name, or a builder such as 'json' with ``data_files``)."""
    datasets = require("datasets", "llm", "Loading Hugging Face datasets")
    try:
        ds = datasets.load_dataset(name, config, split=split, data_files=data_files)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DataError(f"cannot load dataset '{name}' split '{split}' ({str(exc).splitlines()[0]}); check the name, "
                        "the split and the network (offline, only local files and the HF cache work).") from None
    return [dict(r) for r in ds]


def _field(rec: dict[str, Any], name: str, where: str) -> str:
    if name not in rec or rec[name] is None:
        raise DataError(f"{where} has no field '{name}'; its fields are: {', '.join(map(str, rec)) or '(none)'}. "
                        "Set the field names (prompt_field, completion_field, text_field, task_field).")
    return str(rec[name])


def _pairs(records: list[dict[str, Any]], source: str, prompt_field: str, completion_field: str,
           text_field: str | None, task_field: str | None, difficulty_field: str | None,
           default_task: str) -> list[tuple[str, str, str, float]]:
    out = []
    for i, rec in enumerate(records):
        where = f"{source} record {i + 1}"
        if text_field:
            prompt, completion = "", _field(rec, text_field, where)
        else:
            prompt, completion = _field(rec, prompt_field, where), _field(rec, completion_field, where)
        task = str(rec[task_field]) if task_field and rec.get(task_field) is not None else default_task
        diff = float("nan")
        if difficulty_field:
            value = _field(rec, difficulty_field, where)
            try:
                diff = float(value)
            except ValueError:
                raise DataError(f"{where}: difficulty '{difficulty_field}' = {value!r} is not a number.") from None
        out.append((prompt, completion, task, diff))
    return out


def load_tokenizer(tokenizer: Any, texts: Sequence[str]) -> Any:
    """'char' (a character tokenizer fitted on ``texts``), a tokenizer object, or a transformers name/path."""
    if not isinstance(tokenizer, str):
        return tokenizer
    if tokenizer == "char":
        return CharTokenizer.fit(texts)
    transformers = require("transformers", "llm", f"The tokenizer '{tokenizer}'")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(tokenizer)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load tokenizer '{tokenizer}' ({str(exc).splitlines()[0]}); use 'char', a local "
                          "folder, or a Hub name when online.") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


@BENCHMARKS.register("text")
def text_stream(seed: int = 0, path: str | Sequence[str] | None = None, dataset: str | None = None,
                dataset_config: str | None = None, split: str = "train", test_path: str | Sequence[str] | None = None,
                test_split: str | None = None, prompt_field: str = "prompt", completion_field: str = "completion",
                text_field: str | None = None, task_field: str | None = "task", difficulty_field: str | None = None,
                tasks: Sequence[str] | None = None, tokenizer: Any = "char", max_length: int = 256,
                test_fraction: float = 0.2, max_rows: int | None = None, encoding: str = "utf-8",
                name: str = "text", general_text: str | None = None) -> Stream:
    """Text tasks (prompt/completion or plain text) from local files or a Hugging Face dataset.

    Give ``path`` (one file or a list; without a task column each file is one
    task) or ``dataset`` (a Hub name; ``split``/``test_split``). ``tasks``
    selects and orders the tasks by name. ``tokenizer`` is 'char' or a
    transformers tokenizer name/path (use the model's own). ``general_text``
    is a plain-text file of held-out general text (one passage per non-empty
    line) whose perplexity is measured before training and after each task.
    """
    if (path is None) == (dataset is None):
        raise ConfigError("text benchmark: give exactly one of path (local files) or dataset (a Hugging Face name).")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ConfigError(f"text benchmark: test_fraction must be in [0, 1); got {test_fraction}.")
    if int(max_length) < 4:
        raise ConfigError(f"text benchmark: max_length must be >= 4; got {max_length}.")
    fields = dict(prompt_field=prompt_field, completion_field=completion_field, text_field=text_field,
                  task_field=task_field, difficulty_field=difficulty_field)

    def gather(paths: Any, hf_split: str | None) -> list[tuple[str, str, str, float]]:
        rows: list[tuple[str, str, str, float]] = []
        if dataset is not None:
            recs = load_hf_dataset(dataset, hf_split or split, dataset_config)
            rows += _pairs(recs[:max_rows] if max_rows else recs, f"dataset '{dataset}'", default_task=dataset, **fields)
        else:
            for p in [paths] if isinstance(paths, (str, Path)) else list(paths):
                recs = read_records(p, encoding)
                rows += _pairs(recs[:max_rows] if max_rows else recs, f"text file '{p}'",
                               default_task=Path(p).stem, **fields)
        return rows

    train_rows = gather(path, split)
    test_rows = gather(test_path, test_split) if (test_path is not None or test_split is not None) else None
    order = list(dict.fromkeys(r[2] for r in train_rows))
    if tasks is not None:
        missing = [t for t in tasks if t not in order]
        if missing:
            raise DataError(f"text benchmark: task(s) {missing} do not occur in the data; tasks found: {order}.")
        order = list(tasks)
    rng = random.Random(f"text/{seed}")
    split_rows: list[tuple[str, list, list]] = []
    for t in order:
        tr = [r for r in train_rows if r[2] == t]
        if test_rows is not None:
            te = [r for r in test_rows if r[2] == t]
        else:
            rng.shuffle(tr)
            k = max(1, round(len(tr) * float(test_fraction))) if test_fraction > 0 and len(tr) > 1 else 0
            te, tr = tr[:k], tr[k:]
        if not tr or not te:
            raise DataError(f"text benchmark: task '{t}' has {len(tr)} training and {len(te)} test records; "
                            "each task needs at least one of each (add records or change test_fraction).")
        split_rows.append((t, tr, te))
    every = [r for _, tr, te in split_rows for r in (*tr, *te)]
    tok = load_tokenizer(tokenizer, [r[0] + r[1] for r in every])
    width = min(int(max_length), max(pair_lengths(tok, [r[0] for r in every], [r[1] for r in every])))
    has_diff = difficulty_field is not None
    out_tasks = []
    for t, tr, te in split_rows:
        parts = {}
        for side, rows in (("train", tr), ("test", te)):
            ex = encode_pairs(tok, [r[0] for r in rows], [r[1] for r in rows], max_length=width, length=width,
                              source=f"task '{t}' {side}")
            if has_diff:
                ex = ex.with_fields(difficulty=torch.tensor([r[3] for r in rows], dtype=torch.float32))
            parts[side] = ex
        info = {"skill": t, "train_texts": [r[0] + r[1] for r in tr], "test_texts": [r[0] + r[1] for r in te],
                "train_prompts": [r[0] for r in tr], "train_completions": [r[1] for r in tr]}
        out_tasks.append(Task(t, parts["train"], parts["test"], (), info))
    general = _general_texts(general_text, encoding) if general_text is not None else []
    return Stream(name, out_tasks, scenario="domain", kind="lm",
                  info={"tokenizer": tok, "max_length": width, "source": str(dataset or path),
                        "general_texts": general})


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
