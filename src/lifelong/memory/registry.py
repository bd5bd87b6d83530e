"""The buffer registry. Method files register their class in :data:`BUFFERS`
with ``@BUFFERS.register("name")``; ``lifelong.memory`` imports every buffer
class by name (that import registers it)."""

from lifelong.registry import Registry

BUFFERS: Registry = Registry("memory buffer")
