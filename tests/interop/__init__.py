"""Interop tests against the TypeScript reference implementation (npm capnweb 0.12.0)."""
