"""Transports: thin adapters between a session and a connection (see ``Transport``)."""

from .memory import MemoryTransport, memory_pair

__all__ = ["MemoryTransport", "memory_pair"]
