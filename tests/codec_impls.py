"""The codec's two implementations, for the tests that must hold for both.

``capnweb._codec`` runs the compiled walks (``capnweb/_speedups.c``) when they are built, else
the pure-Python ones; a test module that uses the ``codec_impl`` fixture runs every test with
each (``[c]`` is skipped where the extension is not built or ``CAPNWEB_PURE_PYTHON`` is set).
``framing_impl`` does the same for the WebSocket framing (``capnweb/transports/_ws.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from capnweb import _codec
from capnweb.transports import _ws


def available() -> bool:
    """Whether the compiled codec can be used in this process."""
    return _codec._c is not None


@pytest.fixture(scope="module", params=["c", "python"])
def codec_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """The implementation the module's tests run with, switched for the whole module."""
    impl: str = request.param
    if impl == "c" and not available():
        pytest.skip("capnweb._speedups is not built (or CAPNWEB_PURE_PYTHON is set)")
    before = _codec.SPEEDUPS
    _codec._use_speedups(impl == "c")
    try:
        yield impl
    finally:
        _codec._use_speedups(before)


@pytest.fixture(scope="module", params=["c", "python"])
def framing_impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """The WebSocket framing the module's tests run with: compiled, or pure Python."""
    impl: str = request.param
    if impl == "c" and not available():
        pytest.skip("capnweb._speedups is not built (or CAPNWEB_PURE_PYTHON is set)")
    saved = _ws._c_frame, _ws._c_frames
    if impl == "python":
        _ws._c_frame = _ws._c_frames = None
    try:
        yield impl
    finally:
        _ws._c_frame, _ws._c_frames = saved
