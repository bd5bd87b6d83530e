"""The consolidator registry. Method files register their class in
:data:`CONSOLIDATORS` with ``@CONSOLIDATORS.register("name")``;
``lifelong.consolidation`` imports every consolidator class by name (that
import registers it). ``lifelong.hf.lora`` registers ``lora`` and is imported
only when that name (or the full list) is asked for."""

from lifelong.registry import Registry

CONSOLIDATORS: Registry = Registry("consolidator", extensions=("lifelong.hf.lora",))
