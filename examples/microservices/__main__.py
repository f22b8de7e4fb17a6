"""Run the whole example: start the auth, users and gateway services as three processes on free
ports of 127.0.0.1, run the client against the gateway, then stop the services.

Usage (from the repository root): ``python -m examples.microservices``. The services' own
lines are printed too, after their name (``[auth] login: ann``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from examples.microservices.client import tour

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
"""Seconds a service may take to print ``listening N``."""

STOP_TIMEOUT = 5.0
"""Seconds a service may take to stop after SIGTERM before it is killed."""


async def _relay(name: str, stream: asyncio.StreamReader) -> None:
    """Print a service's lines after its name until it closes its output."""
    async for line in stream:
        print(f"[{name}] {line.decode(errors='replace').rstrip()}", flush=True)


@contextlib.asynccontextmanager
async def service(name: str, *options: str) -> AsyncIterator[str]:
    """Run ``examples.microservices.<name>`` on a free port until the block ends; yields the
    service's URL once it printed ``listening N``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        f"examples.microservices.{name}",
        "--port",
        "0",
        *options,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    relay: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            first = await proc.stdout.readline()
        if not first.startswith(b"listening "):
            rest = await proc.stdout.read()
            raise RuntimeError(f"{name} did not start:\n{(first + rest).decode(errors='replace')}")
        relay = asyncio.create_task(_relay(name, proc.stdout))
        yield f"ws://127.0.0.1:{int(first.split()[1])}/rpc"
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if relay is not None:
            await relay


async def main() -> None:
    """Start the services (each is told where the ones it calls are), run the client, stop."""
    async with (
        service("auth") as auth,
        service("users", "--auth", auth) as users,
        service("gateway", "--auth", auth, "--users", users) as gateway,
    ):
        print(f"gateway {gateway}, auth {auth}, users {users}", flush=True)
        await tour(gateway, users)
    print("services stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
