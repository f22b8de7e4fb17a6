"""Every stream test ends with no task of the stream runtime left running."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from helpers import eventually

from .common import stream_tasks


@pytest.fixture(autouse=True)
async def no_stream_task_left() -> AsyncIterator[None]:
    """Fail the test if a pump, a WritableStream runner or a Blob reader outlives it."""
    yield
    try:
        await eventually(lambda: not stream_tasks())
    except TimeoutError:
        pytest.fail(f"stream tasks left running: {stream_tasks()}")
