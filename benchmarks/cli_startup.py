"""CLI start-up: Python import time of `lifelong --help` and `lifelong list`, beyond torch itself.

Each command runs in a fresh interpreter under ``python -X importtime`` with
``import torch`` first, so torch and what it pulls in (numpy...) are one
subtree; the figure is the rest: what lifelong's command costs on top of
torch. The median of ``--rounds`` fresh processes. On a shared machine the
wall times wander; the CPU seconds of the whole process (command minus a
bare ``import torch``) are shown beside them as a cross-check (they carry
the noise of torch's own import, about 0.1 s). Also shows what the first
``torch.optim`` optimiser costs a run (it imports ``torch._dynamo``).
Target: well under a second beyond torch (last line: the slower command's median).

    python benchmarks/cli_startup.py             # 5 rounds
    python benchmarks/cli_startup.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

COMMANDS = {"--help": ["--help"], "list": ["list"]}
RUNNER = ("import sys, torch; sys.argv = ['lifelong', *sys.argv[1:]]\n"
          "from lifelong.cli import main\n"
          "try:\n    main()\nexcept SystemExit:\n    pass")
OPTIM = ("import sys, time, torch; m = torch.nn.Linear(4, 2); t = time.perf_counter()\n"
         "torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, foreach=False)\n"
         "print(time.perf_counter() - t, 'torch._dynamo' in sys.modules)")


def beyond_torch(stderr: str) -> tuple[float, float, list[tuple[str, float]]]:
    """(total, torch subtree, biggest self times outside torch) in seconds, from -X importtime output."""
    recs = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line.split(":", 1)[1].split("|")
        recs.append((len(name) - len(name.lstrip()), name.strip(), int(self_us), int(cum_us)))
    top = min(r[0] for r in recs)
    total = sum(r[3] for r in recs if r[0] == top) / 1e6
    torch_at = next(i for i, r in enumerate(recs) if r[1] == "torch")
    inside = set()
    j = torch_at - 1
    while j >= 0 and recs[j][0] > recs[torch_at][0]:  # a module's imports are printed before it
        inside.add(j)
        j -= 1
    rest = sorted(((r[1], r[2] / 1e6) for i, r in enumerate(recs) if i not in inside and i != torch_at),
                  key=lambda x: -x[1])
    return total, recs[torch_at][3] / 1e6, rest[:8]


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one fresh process (its start-up and imports included)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.path.join(os.path.dirname(__file__), "..",
                                                                                   "src"),
                                                                      os.environ.get("PYTHONPATH")]))}
    bare = statistics.median(cpu_seconds([sys.executable, "-c", "import torch"], env) for _ in range(args.rounds))
    headline = 0.0
    for label, argv in COMMANDS.items():
        beyond, torch_s, last = [], [], None
        cpu = statistics.median(cpu_seconds([sys.executable, "-c", RUNNER, *argv], env) for _ in range(args.rounds))
        for _ in range(args.rounds):
            p = subprocess.run([sys.executable, "-X", "importtime", "-c", RUNNER, *argv], env=env,
                               capture_output=True, text=True, check=True)
            total, t, last = beyond_torch(p.stderr)
            beyond.append(total - t)
            torch_s.append(t)
        print(f"lifelong {label:7s} beyond torch {statistics.median(beyond):.3f} s "
              f"(torch itself {statistics.median(torch_s):.2f} s); CPU beyond a bare import torch "
              f"{cpu - bare:.3f} s")
        headline = max(headline, statistics.median(beyond))
        for name, s in last:
            print(f"    {name:45s} {s * 1e3:6.1f} ms")
    p = subprocess.run([sys.executable, "-c", OPTIM], env=env, capture_output=True, text=True, check=True)
    secs, dynamo = p.stdout.split()
    print(f"first torch.optim optimiser: {float(secs):.2f} s (imports torch._dynamo: {dynamo})")
    print(f"cli_startup_beyond_torch_s: {headline:.3f}")


if __name__ == "__main__":
    main()
