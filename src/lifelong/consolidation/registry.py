"""The consolidator registry. Method files register themselves in
:data:`CONSOLIDATORS`; ``lifelong.consolidation`` imports them all explicitly."""

from lifelong.registry import Registry

CONSOLIDATORS: Registry = Registry("consolidator")
