"""CUDA paths of the engine, in one short script: device placement, bf16 and fp16 (with the gradient
scaler) training, gradient checkpointing, and a 2-task LoRA run; prints what it saw.

Usage: python benchmarks/gpu_check.py [--steps 30]
Without CUDA it says so and exits 0 (nothing to check here). Last line: ``gpu_check: ok`` or
``gpu_check: FAILED (...)``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this on a GPU machine)")
        print("gpu_check: skipped")
        return

    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.engine import Recipe, TrainConfig, train_stream
    from lifelong.engine.callbacks import Callback
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.strategies import compose

    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"bf16 supported: {torch.cuda.is_bf16_supported()}")
    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=512, test_size=64, max_digits=2,
                                                  skills=["add", "sub"])

    class Seen(Callback):
        def __init__(self):
            self.devices, self.losses = set(), []

        def on_step_end(self, ctx, loss):
            self.devices.add(str(next(ctx.model.parameters()).device))
            self.losses.append(loss)

    failures = []
    cases = [("fp32", {}), ("bf16", {"precision": "bf16"}), ("fp16 + scaler", {"precision": "fp16"}),
             ("bf16 + gradient checkpointing", {"precision": "bf16", "gradient_checkpointing": True}),
             ("amp (auto)", {"amp": True})]
    for name, extra in cases:
        seen = Seen()
        cfg = TrainConfig(steps=a.steps, batch_size=64, optimizer="adamw", lr=3e-3, device="cuda", log_every=0,
                          eval_batch_size=256, **extra)
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            r = train_stream(stream, tiny_causal_lm(stream, hidden=256, heads=4, layers=4, seed=0), Recipe(), cfg,
                             callbacks=[seen])
        except Exception as exc:  # noqa: BLE001 - report every case
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"{name:<32} FAILED {type(exc).__name__}: {exc}")
            continue
        secs = time.perf_counter() - t0
        ok = seen.devices == {"cuda:0"} and all(map(torch.isfinite, map(torch.tensor, seen.losses)))
        if not ok:
            failures.append(f"{name}: devices {seen.devices}, finite losses {ok}")
        print(f"{name:<32} loss {seen.losses[0]:.3f} -> {seen.losses[-1]:.3f}  acc {r.accuracy[-1]}  "
              f"{secs:.1f} s  peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB  on {sorted(seen.devices)}")
    # a 2-task LoRA run: adapters per task on the GPU, merged at task ends
    try:
        seen = Seen()
        recipe = compose({"lora": {"rank": 8}})
        r = train_stream(stream, tiny_causal_lm(stream, hidden=256, heads=4, layers=4, seed=0), recipe,
                         TrainConfig(steps=a.steps, batch_size=64, optimizer="adamw", lr=3e-3, device="cuda",
                                     precision="bf16", log_every=0), callbacks=[seen])
        print(f"{'lora, 2 tasks, bf16':<32} accuracy matrix {r.accuracy} on {sorted(seen.devices)}")
    except Exception as exc:  # noqa: BLE001
        failures.append(f"lora: {type(exc).__name__}: {exc}")
        print(f"lora FAILED {type(exc).__name__}: {exc}")
    print("gpu_check: ok" if not failures else f"gpu_check: FAILED ({'; '.join(failures)})")


if __name__ == "__main__":
    main()
