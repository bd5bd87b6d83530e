"""Cyclical curriculum ("Cyclical Curriculum Learning"): the
training subset size cycles between a paced curriculum subset and the full data.

Training is cut into cycles of ``period`` steps. In the first
``curriculum_share`` of each cycle the easiest ``g`` of the data is available,
with ``g`` following the pacing function from ``start`` to 1 across that part
of the cycle; the rest of the cycle trains on all data (vanilla). The paper's
argument is that alternating curriculum and vanilla phases is less error-prone
than using only one of them.
"""

from __future__ import annotations

from typing import ClassVar

from lifelong.curriculum.common import check_fraction, check_steps_or_fraction, resolve_steps
from lifelong.curriculum.pacing import PacedSchedule, pacing_fraction
from lifelong.curriculum.registry import SCHEDULES


@SCHEDULES.register("cyclical")
class CyclicalCurriculum(PacedSchedule):
    """Cyclical curriculum: each `period` alternates a paced easy-first subset and the full data."""

    name: ClassVar[str] = "cyclical"
    state_attrs: ClassVar[tuple[str, ...]] = PacedSchedule.state_attrs + ("_period_steps",)

    def __init__(self, period: float = 0.25, curriculum_share: float = 0.5, start: float = 0.2,
                 pacing: str = "linear", p: float = 2.0, buckets: int = 5) -> None:
        super().__init__(pacing, start, 1.0, None, p=p, buckets=buckets)
        self.period = check_steps_or_fraction("period", period)
        self.curriculum_share = check_fraction("curriculum_share", curriculum_share, 0.0, 1.0, low_open=True)

    def start(self, pool, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self._period_steps = resolve_steps(self.period, self.total_steps)
        self._fraction = self.fraction(0)

    def fraction(self, step: int) -> float:
        if not hasattr(self, "_period_steps"):
            return self.start_fraction
        pos = (step % self._period_steps) / self._period_steps
        if pos >= self.curriculum_share:
            return 1.0
        return pacing_fraction(self.pacing, pos / self.curriculum_share, self.start_fraction, self.p, self.buckets)
