"""The core never imports ``lifelong.hf`` at module level; hf names still resolve through the registries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lifelong.errors import ConfigError

CORE = ["lifelong", "lifelong.data", "lifelong.engine", "lifelong.curriculum", "lifelong.consolidation",
        "lifelong.memory", "lifelong.assessment", "lifelong.models", "lifelong.runs", "lifelong.strategies",
        "lifelong.registry", "lifelong.config"]


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_core_packages_do_not_import_hf():
    # one fresh interpreter per package, so an import made by one cannot hide another's
    code = ("import importlib, sys; importlib.import_module({m!r}); "
            "print(sorted(k for k in sys.modules if k == 'lifelong.hf' or k.startswith('lifelong.hf.')))")
    for module in CORE:
        assert _fresh(code.format(m=module)) == "[]", f"importing {module} imported lifelong.hf"


def test_core_names_resolve_without_hf():
    code = ("import sys\n"
            "from lifelong.strategies import build_strategy\n"
            "from lifelong.models import MODELS\n"
            "from lifelong.data import make_benchmark\n"
            "build_strategy('ewc'); build_strategy('der++'); MODELS.get('mlp'); make_benchmark('split-digits')\n"
            "print('lifelong.hf' in sys.modules)")
    assert _fresh(code) == "False"


def test_hf_names_load_hf_lazily_from_each_registry():
    for lookup in ("from lifelong.models import MODELS; MODELS.get('tiny-causal-lm')",
                   "from lifelong.consolidation import CONSOLIDATORS; CONSOLIDATORS.get('lora')",
                   "from lifelong.data import BENCHMARKS; BENCHMARKS.get('arithmetic-skills')",
                   "from lifelong.strategies import STRATEGIES; STRATEGIES.get('lora')",
                   "from lifelong.data import BENCHMARKS; BENCHMARKS.names()"):
        assert _fresh(f"import sys; {lookup}; print('lifelong.hf' in sys.modules)") == "True", lookup


def test_hf_names_resolve_through_the_registries():
    from lifelong.consolidation import CONSOLIDATORS
    from lifelong.data import BENCHMARKS, make_benchmark
    from lifelong.hf import LoRAPerTask, arithmetic_skills, text_stream, tiny_causal_lm
    from lifelong.models import MODELS
    from lifelong.strategies import STRATEGIES, build_strategy

    assert CONSOLIDATORS.get("lora") is LoRAPerTask and "lora" in CONSOLIDATORS.names()
    assert MODELS.get("tiny-causal-lm") is tiny_causal_lm and "hf-causal-lm" in MODELS
    assert BENCHMARKS.get("arithmetic-skills") is arithmetic_skills and BENCHMARKS.get("text") is text_stream
    assert {"arithmetic-skills", "text", "split-digits"} <= set(BENCHMARKS.names())
    assert "lora" in STRATEGIES and isinstance(build_strategy("lora", {"rank": 2}).consolidators[0], LoRAPerTask)
    stream = make_benchmark("arithmetic-skills", train_size=8, test_size=4)
    assert len(stream) == 3 and stream.kind == "lm"
    with pytest.raises(ConfigError, match="Did you mean 'lora'"):
        CONSOLIDATORS.get("lorra")


def test_every_method_is_importable_by_class_from_its_package():
    import lifelong.consolidation as consolidation
    import lifelong.curriculum as curriculum
    import lifelong.data as data
    import lifelong.memory as memory
    from lifelong.consolidation import CONSOLIDATORS
    from lifelong.curriculum import SCHEDULES, SCORERS
    from lifelong.data import BENCHMARKS
    from lifelong.memory import BUFFERS

    import lifelong.hf as hf

    for registry, packages in ((SCHEDULES, [curriculum]), (SCORERS, [curriculum]), (BUFFERS, [memory]),
                               (CONSOLIDATORS, [consolidation, hf]), (BENCHMARKS, [data, hf])):
        exported = {id(getattr(p, n)) for p in packages for n in p.__all__}
        for entry in registry.entries():
            assert id(entry.obj) in exported, f"{registry.kind} '{entry.name}' is not exported by class"
