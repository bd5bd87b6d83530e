"""Replay memory buffers, registered in :data:`BUFFERS`."""

from lifelong.memory.base import Memory
from lifelong.registry import Registry

BUFFERS: Registry = Registry("memory buffer")

__all__ = ["Memory", "BUFFERS"]
