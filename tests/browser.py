"""Headless Chromium for the browser tests: Debian's, installed by the test command
(tests/system-deps.sh), driven by Playwright, which may not download browsers here."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright


def chromium() -> str:
    """The headless Chromium's executable; a test without one fails, it is not skipped."""
    exe = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if exe is None:
        pytest.fail(
            "no headless Chromium: install the Debian package chromium-headless-shell "
            "(bash tests/system-deps.sh does)",
            pytrace=False,
        )
    return exe


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on the way out."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            yield launched
        finally:
            await launched.close()
