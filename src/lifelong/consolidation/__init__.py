"""How to keep what was learned: consolidators, registered in :data:`CONSOLIDATORS`."""

from lifelong.consolidation.base import Consolidator, snapshot
from lifelong.registry import Registry

CONSOLIDATORS: Registry = Registry("consolidator")

__all__ = ["Consolidator", "CONSOLIDATORS", "snapshot"]
