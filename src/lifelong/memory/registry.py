"""The buffer registry. Method files register themselves in :data:`BUFFERS`;
``lifelong.memory`` imports them all explicitly so every name is available."""

from lifelong.registry import Registry

BUFFERS: Registry = Registry("memory buffer")
