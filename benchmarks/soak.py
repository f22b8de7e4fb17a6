"""Soak test of ``capnweb.serve()``: many clients, calls always in flight, then an abrupt end.

Usage: python benchmarks/soak.py [--clients N] [--duration S] [--json FILE] [--help]

Everything runs on 127.0.0.1 and stops by itself:

1. A server process (``--role server``) serves ``SoakTarget`` with ``capnweb.serve()`` on a free
   port, and a ``StatsTarget`` with a second ``serve()`` on another port of the same event loop:
   ``stats()`` reports RSS (``VmRSS``), asyncio tasks, open fds, the endpoint's live sessions
   and the sum of their ``Session.stats()`` (exports, imports), the methods running, the
   ``SoakTarget``/``Counter`` instances alive and the ``Session`` objects alive (after
   ``gc.collect()``).
2. After a short warm-up from this process, the baseline is read. ``--clients`` clients (most
   over WebSocket, ``--http-share`` of them over HTTP batch) run for ``--duration`` seconds,
   split over ``--procs`` client processes (``--role client``). Every call sends a unique value
   and checks the exact answer: wrong answers, calls that raised, calls neither answered nor
   failed ``--drain`` seconds after the end (lost) and answers or callbacks seen twice
   (duplicated) are counted. The server's figures are sampled every second (peaks).
3. Each client then starts calls that stay in flight (a 10 s ``delayed()``, a callback the
   client never answers, a capability it keeps); once every session has them, the server's
   figures are read and the client processes are killed with SIGKILL.
4. The server's figures are polled until they are back at the baseline (at most ``--settle``
   seconds), then the table is printed. FAIL (exit status 1) when a call was wrong, lost,
   duplicated or failed, or when sessions, exports, imports, running methods, live targets,
   ``Session`` objects, tasks or fds do not return to their baseline, or RSS ends more than
   ``--rss-tolerance-mb`` above it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

import aiohttp  # noqa: E402

import capnweb  # noqa: E402

HOLD_MS = 10_000
"""How long the ``delayed()`` calls left in flight at the kill take. A method the disconnect
does not cancel runs to its end (its answer is dropped) and keeps its session and target alive
until then: this must be well under ``--settle``."""

VALUE_BASE = 10**9
"""Client process ``i`` numbers its values from ``(i + 1) * VALUE_BASE``: unique across all."""


def raise_nofile(needed: int) -> tuple[int, int]:
    """Raise this process's soft limit of open files to ``needed`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def emit(event: str, **data: Any) -> None:
    """One JSON line on stdout, read by the orchestrating process."""
    print(json.dumps({"event": event, **data}), flush=True)


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


# --------------------------------------------------------------------------------------------
# the server process


class Live:
    """What the server process counts for the stats endpoint."""

    delayed = 0  # SoakTarget.delayed() calls executing now
    call_back = 0  # SoakTarget.call_back() calls executing now
    targets: ClassVar[weakref.WeakSet[SoakTarget]] = weakref.WeakSet()
    counters: ClassVar[weakref.WeakSet[Counter]] = weakref.WeakSet()


class Counter(capnweb.RpcTarget):
    def __init__(self, value: int) -> None:
        self._value = value
        Live.counters.add(self)

    def add(self, amount: int) -> int:
        self._value += amount
        return self._value


class SoakTarget(capnweb.RpcTarget):
    """The main capability of every soak session."""

    def __init__(self) -> None:
        Live.targets.add(self)

    def echo(self, x: Any) -> Any:
        return x

    async def delayed(self, x: Any, max_ms: float, exact: bool = False) -> Any:
        """``x``, after a random delay of up to ``max_ms`` (exactly ``max_ms`` if ``exact``)."""
        Live.delayed += 1
        try:
            await asyncio.sleep((max_ms if exact else random.uniform(0, max_ms)) / 1000)
            return x
        finally:
            Live.delayed -= 1

    def make_counter(self, start: int) -> Counter:
        return Counter(start)

    async def call_back(self, callback: Any, x: int) -> int:
        """Calls the client's ``callback(x)``; its answer plus one."""
        Live.call_back += 1
        try:
            result: int = await callback(x)
            return result + 1
        finally:
            Live.call_back -= 1


def read_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return {"rss": 0, "peak_rss": 0}

    def kb(name: str) -> int:
        m = re.search(rf"^{name}:\s+(\d+) kB", status, re.M)
        return int(m.group(1)) * 1024 if m else 0

    return {"rss": kb("VmRSS"), "peak_rss": kb("VmHWM")}


class StatsTarget(capnweb.RpcTarget):
    def __init__(self, server: capnweb.Server) -> None:
        self._server = server

    async def stats(self, collect: bool = True) -> dict[str, Any]:
        """The server's figures; ``collect``: after ``gc.collect()``, with the object counts.

        A stub found garbage by the collector is released on the next loop turn (a handle
        scheduled by its finalizer), so the collection is repeated over a few turns."""
        if collect:
            for _ in range(3):
                gc.collect()
                await asyncio.sleep(0)
        sessions = list(self._server.endpoint.sessions)
        exports = imports = 0
        for s in sessions:
            st = s.stats()
            exports += st.exports
            imports += st.imports
        out: dict[str, Any] = {
            **read_status(),
            "tasks": len(asyncio.all_tasks()),
            "fds": len(os.listdir("/proc/self/fd")),
            "sessions": len(sessions),
            "exports": exports,
            "imports": imports,
            "delayed": Live.delayed,
            "call_back": Live.call_back,
            "targets": len(Live.targets),
            "counters": len(Live.counters),
            "cpu_s": time.process_time(),
        }
        if collect:
            objects = gc.get_objects()
            out["session_objects"] = sum(isinstance(o, capnweb.Session) for o in objects)
            out["gc_objects"] = len(objects)
            del objects
        return out


async def server_main(args: argparse.Namespace) -> None:
    raise_nofile(args.nofile)
    async with capnweb.serve(SoakTarget, "127.0.0.1", 0, "/rpc") as server:
        stats_server = await capnweb.serve(lambda: StatsTarget(server), "127.0.0.1", 0, "/stats")
        try:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            stdin = await stdin_reader()

            async def watch_stdin() -> None:  # the orchestrator is gone: stop
                while await stdin.readline():
                    pass
                stop.set()

            watcher = asyncio.create_task(watch_stdin())
            emit("ready", rpc_port=server.port, stats_port=stats_server.port, pid=os.getpid())
            await stop.wait()
            watcher.cancel()
        finally:
            await stats_server.close()


# --------------------------------------------------------------------------------------------
# a client process


@dataclass
class Tally:
    """One client process's counts; every value sent is ``base + k`` for a fresh ``k``."""

    base: int
    next: int = 0
    calls: int = 0
    callbacks: int = 0
    wrong: int = 0
    failed: int = 0
    dup: int = 0
    pending: dict[int, str] = field(default_factory=dict)
    answered: bytearray = field(default_factory=bytearray)
    called: bytearray = field(default_factory=bytearray)
    samples: list[str] = field(default_factory=list)

    def new(self) -> int:
        self.next += 1
        if self.next >= len(self.answered):
            grow = bytearray(1 << 20)
            self.answered += grow
            self.called += grow
        return self.base + self.next

    def sample(self, text: str) -> None:
        if len(self.samples) < 10:
            self.samples.append(text)

    def mark(self, table: bytearray, n: int, what: str) -> bool:
        """Marks value ``n`` as answered (``table``); False, counted, if it was already."""
        k = n - self.base
        if not 0 < k <= self.next:
            self.wrong += 1
            self.sample(f"{what} for a value never sent: {n!r}")
            return False
        if table[k]:
            self.dup += 1
            self.sample(f"{what} twice for {n}")
            return False
        table[k] = 1
        return True

    async def call(self, n: int, op: str, promise: Awaitable[Any], expected: Any) -> bool:
        """Awaits one call of value ``n``; checks its answer is exactly ``expected``."""
        self.pending[n] = op
        try:
            got = await promise
        except Exception as e:
            self.failed += 1
            self.sample(f"{op}({n}) raised {type(e).__name__}: {e}")
            return False
        finally:
            self.pending.pop(n, None)
        if type(got) is not type(expected) or got != expected:
            self.wrong += 1
            self.sample(f"{op}({n}) answered {got!r}, expected {expected!r}")
            return False
        if self.mark(self.answered, n, f"answer of {op}"):
            self.calls += 1
            return True
        return False

    def callback(self, x: int) -> int:
        """The callback the server calls (``call_back``): it answers ``2 * x``."""
        if type(x) is int and self.mark(self.called, x, "callback"):
            self.callbacks += 1
        elif type(x) is not int:
            self.wrong += 1
            self.sample(f"callback called with {x!r}")
        return 2 * x if type(x) is int else 0

    def counts(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "callbacks": self.callbacks,
            "wrong": self.wrong,
            "failed": self.failed,
            "dup": self.dup,
            "samples": self.samples,
        }


async def ws_operation(api: Any, t: Tally, rng: random.Random) -> None:
    """One operation of a WebSocket client, chosen at random."""
    op = rng.choices(("echo", "delayed", "counter", "callback"), (3, 3, 2, 2))[0]
    if op == "echo":
        n = t.new()
        await t.call(n, op, api.echo([n, f"v{n}", {"n": n}]), [n, f"v{n}", {"n": n}])
    elif op == "delayed":
        n = t.new()
        await t.call(n, op, api.delayed(n, 20), n)
    elif op == "counter":
        a, b = t.new(), t.new()
        counter = api.make_counter(a)  # a promise: add() is pipelined on it
        try:
            if await t.call(b, "counter.add", counter.add(b), a + b):
                t.mark(t.answered, a, "answer of make_counter")
        finally:
            counter.dispose()
    else:
        n = t.new()
        await t.call(n, op, api.call_back(t.callback, n), 2 * n + 1)


async def batch_operation(url: str, t: Tally, http: aiohttp.ClientSession) -> None:
    """One HTTP batch: three calls, one of them pipelined on a capability, in one POST."""
    async with capnweb.connect(url, http=http) as api:
        n, m, a, b = t.new(), t.new(), t.new(), t.new()
        counter = api.make_counter(a)
        results = await asyncio.gather(
            t.call(n, "batch echo", api.echo(f"b{n}"), f"b{n}"),
            t.call(m, "batch delayed", api.delayed(m, 20), m),
            t.call(b, "batch counter.add", counter.add(b), a + b),
        )
        if results[2]:
            t.mark(t.answered, a, "answer of batch make_counter")


async def client_main(args: argparse.Namespace) -> None:
    raise_nofile(args.nofile)
    t = Tally(base=(args.index + 1) * VALUE_BASE)
    rng = random.Random(args.seed * 1000 + args.index)
    stdin = await stdin_reader()
    ws_url, http_url = args.ws_url, args.http_url

    # connect, a few at a time (the server's listen backlog)
    opening = asyncio.Semaphore(32)

    async def open_ws() -> tuple[capnweb.Connection[Any], Any]:
        async with opening:
            conn = capnweb.connect(ws_url)
            return conn, await conn.open()

    opened = await asyncio.gather(*(open_ws() for _ in range(args.ws)), return_exceptions=True)
    conns = [c for c in opened if not isinstance(c, BaseException)]
    errors = [f"{type(e).__name__}: {e}" for e in opened if isinstance(e, BaseException)]
    emit("connected", ws=len(conns), connect_failed=len(errors), errors=errors[:5])
    if not await stdin.readline():
        return
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    # the measured phase
    start = time.monotonic()
    stop = start + args.duration
    broken = 0

    async def ws_worker(conn: capnweb.Connection[Any], api: Any) -> None:
        nonlocal broken
        while time.monotonic() < stop:
            await ws_operation(api, t, rng)
            if conn.session is not None and conn.session.broken is not None:
                broken += 1
                t.sample(f"session ended: {conn.session.broken!r}")
                return

    async def http_worker() -> None:
        while time.monotonic() < stop:
            try:
                await batch_operation(http_url, t, http)
            except Exception as e:  # the POST itself failed
                t.failed += 1
                t.sample(f"batch failed: {type(e).__name__}: {e}")
                await asyncio.sleep(0.1)

    workers = [
        asyncio.create_task(ws_worker(conn, api))
        for conn, api in conns
        for _ in range(args.inflight)
    ] + [asyncio.create_task(http_worker()) for _ in range(args.http)]
    unfinished: set[asyncio.Task[None]] = set()
    if workers:
        _, unfinished = await asyncio.wait(workers, timeout=args.duration + args.drain)
    lost = len(t.pending)
    lost_ops = sorted(set(t.pending.values()))
    for w in unfinished:
        w.cancel()
    emit(
        "measured",
        seconds=time.monotonic() - start,
        lost=lost,
        lost_ops=lost_ops,
        broken=broken,
        **t.counts(),
    )

    # leave calls in flight, then wait for SIGKILL
    keep: list[Any] = []
    never = asyncio.Event()

    async def unanswered(x: int) -> int:
        await never.wait()
        return x

    caps = 0

    async def hold_ws(api: Any) -> int:
        nonlocal caps
        slow = api.delayed(t.new(), HOLD_MS, True)
        keep.append(asyncio.ensure_future(slow))  # awaited: its answer is pulled
        keep.append(asyncio.ensure_future(api.call_back(unanswered, t.new())))
        counter = api.make_counter(t.new())
        keep.append(counter)  # a capability kept until the end
        await counter.add(1)
        caps += 1
        await api.echo(t.new())  # the server has received everything before it
        return 2

    async def hold_http() -> int:
        async def one() -> None:
            async with capnweb.connect(http_url, http=http) as api:
                await api.delayed(t.new(), HOLD_MS, True)

        keep.append(asyncio.create_task(one()))
        return 1

    held = await asyncio.wait_for(
        asyncio.gather(
            *(hold_ws(api) for _, api in conns),
            *(hold_http() for _ in range(args.http)),
            return_exceptions=True,
        ),
        timeout=30,
    )
    emit(
        "holding",
        calls=sum(h for h in held if isinstance(h, int)),
        capabilities=caps,
        errors=[f"{type(h).__name__}: {h}" for h in held if isinstance(h, BaseException)][:5],
    )
    # Killed by the orchestrator; if it is gone (stdin closed) or never does, end anyway.
    try:
        while await asyncio.wait_for(stdin.readline(), timeout=120):
            pass
    except TimeoutError:
        pass
    os._exit(3)  # nothing to clean up politely: the point is the abrupt end


# --------------------------------------------------------------------------------------------
# the orchestrating process


class Child:
    """A process of this script (server or client role), its stdout read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, log: IO[bytes]) -> None:
        self.proc = proc
        self.name = name
        self.log = log

    @classmethod
    async def start(cls, name: str, *argv: str) -> Child:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        return cls(proc, name, log)

    async def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next JSON line of the process, which must be ``event``."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no {event!r} within {timeout:.0f} s") from None
        if not line:
            await self.proc.wait()
            raise RuntimeError(
                f"{self.name} exited ({self.proc.returncode}) before {event!r}:\n{self.stderr()}"
            )
        data: dict[str, Any] = json.loads(line)
        if data.get("event") != event:
            raise RuntimeError(f"{self.name}: expected {event!r}, got {data}")
        return data

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def stderr(self, tail: int = 3000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-tail:]

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """``sig`` to the process (by PID), SIGKILL if it is still there ``timeout`` s later."""
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
                await asyncio.wait_for(self.proc.wait(), timeout)
            except ProcessLookupError:
                pass
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.log.close()


ROWS: tuple[tuple[str, str, str], ...] = (
    # key, label, rule for "after" ("eq": = before, "le": <= before, "zero", "rss", "info")
    ("rss", "RSS (MiB)", "rss"),
    ("tasks", "asyncio tasks", "le"),
    ("fds", "open fds", "le"),
    ("sessions", "live sessions", "eq"),
    ("exports", "live exports (sum)", "eq"),
    ("imports", "live imports (sum)", "eq"),
    ("delayed", "delayed() running", "zero"),
    ("call_back", "call_back() running", "zero"),
    ("targets", "SoakTarget alive", "eq"),
    ("counters", "Counter alive", "eq"),
    ("session_objects", "Session objects", "eq"),
    ("gc_objects", "gc-tracked objects", "info"),
)

SETTLE_KEYS = [k for k, _, rule in ROWS if rule in ("eq", "le", "zero")]


def off(now: dict[str, Any], base: dict[str, Any], key: str, rule: str) -> bool:
    """Whether figure ``key`` of reading ``now`` breaks its rule against the baseline."""
    value, limit = now.get(key, 0), (0 if rule == "zero" else base.get(key, 0))
    return bool(value > limit or (rule == "eq" and value != limit))


def settled(now: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """What is not back at its baseline: ``["live sessions 3 (baseline 0)", ...]``."""
    return [
        f"{label} {now.get(key, 0)} (baseline {0 if rule == 'zero' else base.get(key, 0)})"
        for key, label, rule in ROWS
        if rule in ("eq", "le", "zero") and off(now, base, key, rule)
    ]


def settle_times(
    readings: list[dict[str, Any]], base: dict[str, Any], since: float
) -> dict[str, float | None]:
    """For each judged figure, seconds from ``since`` to the first reading from which on it
    keeps to its rule (None: it never did)."""
    out: dict[str, float | None] = {}
    for key, _, rule in ROWS:
        if rule not in ("eq", "le", "zero"):
            continue
        bad = [i for i, now in enumerate(readings) if off(now, base, key, rule)]
        if not bad:
            out[key] = readings[0]["t"] - since
        elif bad[-1] + 1 < len(readings):
            out[key] = readings[bad[-1] + 1]["t"] - since
        else:
            out[key] = None
    return out


class StatsClient:
    """One WebSocket session to the server's stats endpoint, for the whole run."""

    def __init__(self, url: str) -> None:
        self.conn = capnweb.connect(url)
        self.api: Any = None

    async def open(self) -> None:
        self.api = await self.conn.open()

    async def read(self, collect: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = await asyncio.wait_for(self.api.stats(collect), 30)
        result["t"] = time.monotonic()
        return result


async def warm_up(rpc_url: str) -> None:
    """Every operation a few times over both transports, so that imports, caches and the
    allocator's first arenas are in the baseline rather than counted as growth."""
    t = Tally(base=0)
    rng = random.Random(0)
    async with capnweb.connect(rpc_url.replace("http://", "ws://")) as api:
        await asyncio.gather(*(ws_operation(api, t, rng) for _ in range(200)))
    async with aiohttp.ClientSession() as http:  # closed here: no keep-alive left
        await asyncio.gather(*(batch_operation(rpc_url, t, http) for _ in range(20)))
    if t.wrong or t.failed or t.dup:
        raise RuntimeError(f"warm-up failed: {t.counts()}")


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"config": vars(args).copy()}
    http_total = round(args.clients * args.http_share)
    ws_total = args.clients - http_total
    server = await Child.start("server", "--role", "server", "--nofile", str(args.nofile))
    clients: list[Child] = []
    stats: StatsClient | None = None
    try:
        ready = await server.expect("ready", 30)
        rpc_url = f"http://127.0.0.1:{ready['rpc_port']}/rpc"
        stats = StatsClient(f"ws://127.0.0.1:{ready['stats_port']}/stats")
        await stats.open()
        log(f"server pid {ready['pid']} on {rpc_url}; warming up")
        await warm_up(rpc_url)

        # the baseline: two readings in a row that agree (closed connections are gone)
        base = await stats.read()
        for _ in range(20):
            await asyncio.sleep(0.25)
            again = await stats.read()
            same = all(again[k] == base[k] for k in SETTLE_KEYS)
            base = again
            if same:
                break
        samples = [base]

        # the clients
        for i in range(args.procs):
            ws = ws_total // args.procs + (i < ws_total % args.procs)
            http = http_total // args.procs + (i < http_total % args.procs)
            clients.append(
                await Child.start(
                    f"client {i}",
                    *("--role", "client", "--index", str(i), "--seed", str(args.seed)),
                    *("--ws", str(ws), "--http", str(http), "--nofile", str(args.nofile)),
                    *("--ws-url", rpc_url.replace("http://", "ws://"), "--http-url", rpc_url),
                    *("--duration", str(args.duration), "--drain", str(args.drain)),
                    *("--inflight", str(args.inflight)),
                )
            )
        log(f"{args.clients} clients ({ws_total} WebSocket, {http_total} HTTP batch) connecting")
        connected = [await c.expect("connected", 60 + args.clients / 10) for c in clients]
        for c in clients:
            c.send("go")
        run_start = await stats.read(collect=False)
        log(f"running for {args.duration:g} s")

        async def sample_until(done: asyncio.Future[Any]) -> None:
            while not done.done():
                samples.append(await stats.read(collect=False))
                await asyncio.wait([done], timeout=1.0)

        measured_f = asyncio.ensure_future(
            asyncio.gather(
                *(c.expect("measured", args.duration + args.drain + 60) for c in clients)
            )
        )
        await sample_until(measured_f)
        measured = measured_f.result()
        run_end = await stats.read(collect=False)
        samples.append(run_end)
        run_seconds = max(m["seconds"] for m in measured)

        # calls left in flight, then SIGKILL
        holding = [await c.expect("holding", 60) for c in clients]
        deadline = time.monotonic() + 10
        inflight = await stats.read()
        while inflight["sessions"] < args.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            inflight = await stats.read()
        samples.append(inflight)
        log(
            f"{inflight['sessions']} sessions, {inflight['delayed']} delayed() and "
            f"{inflight['call_back']} call_back() running: "
            "SIGKILL to the client processes"
        )
        for c in clients:
            c.proc.kill()
        killed_at = time.monotonic()
        for c in clients:
            await c.proc.wait()

        # back to the baseline?
        after = await stats.read()
        settling = [after]
        while settled(after, base) and time.monotonic() < killed_at + args.settle:
            await asyncio.sleep(0.5)
            after = await stats.read()
            settling.append(after)
        settle_s = after["t"] - killed_at
        settle_by = settle_times(settling, base, killed_at)
        left = settled(after, base)
    finally:
        if stats is not None and stats.api is not None:
            await stats.conn.close()
        for c in clients:
            await c.stop(signal.SIGKILL)
        await server.stop()
        server_log = server.stderr(20000)
        for c in [*clients, server]:
            c.close()

    def total(key: str) -> int:
        return sum(int(m[key]) for m in measured)

    peak = {k: max(s.get(k, 0) for s in samples) for k, _, _ in ROWS}
    peak["peak_rss"] = inflight["peak_rss"]
    totals: dict[str, Any] = {
        k: total(k) for k in ("calls", "callbacks", "wrong", "lost", "dup", "failed", "broken")
    }
    totals["connect_failed"] = sum(c["connect_failed"] for c in connected)
    totals["calls_per_s"] = totals["calls"] / run_seconds if run_seconds else 0.0
    server_cpu = run_end["cpu_s"] - run_start["cpu_s"]
    result.update(
        clients={"ws": ws_total, "http": http_total, "procs": args.procs},
        totals=totals,
        run_seconds=run_seconds,
        server_cpu_s=server_cpu,
        samples_of_errors=[s for m in measured for s in m["samples"]][:10],
        lost_ops=sorted({op for m in measured for op in m["lost_ops"]}),
        connect_errors=[e for c in connected for e in c["errors"]][:5],
        held_calls=sum(h["calls"] for h in holding),
        held_capabilities=sum(h["capabilities"] for h in holding),
        hold_errors=[e for h in holding for e in h["errors"]][:5],
        before=base,
        peak=peak,
        at_kill=inflight,
        just_after=settling[0],
        just_after_seconds=settling[0]["t"] - killed_at,
        after=after,
        settle_seconds=settle_s,
        settle_seconds_by_figure=settle_by,
        not_settled=left,
        server_log_lines=len(server_log.splitlines()),
        server_log_tail=server_log[-3000:],
        series=[{k: s.get(k) for k in ("t", *SETTLE_KEYS, "rss")} for s in [*samples, *settling]],
    )
    return result


def log(text: str) -> None:
    print(f"  soak: {text}", file=sys.stderr, flush=True)


def judge(r: dict[str, Any], rss_tolerance_mb: float) -> list[str]:
    """Why the run fails (empty: it passes)."""
    t = r["totals"]
    why = [f"{t[k]} {label}" for k, label in COUNT_ROWS if k in MUST_BE_ZERO and t[k]]
    why += [f"not back at baseline: {x}" for x in r["not_settled"]]
    grown = (r["after"]["rss"] - r["before"]["rss"]) / 2**20
    if grown > rss_tolerance_mb:
        why.append(f"RSS {grown:.1f} MiB above baseline (tolerance {rss_tolerance_mb:g} MiB)")
    expected = r["clients"]["ws"] + r["clients"]["http"]
    k = r["at_kill"]
    no_callbacks = r["clients"]["ws"] > t["connect_failed"] and not k["call_back"]
    if k["sessions"] < expected - t["connect_failed"] or not k["delayed"] or no_callbacks:
        why.append(
            f"kill without calls in flight: {k['sessions']} sessions, {k['delayed']} "
            f"delayed() and {k['call_back']} call_back() running"
        )
    return why


COUNT_ROWS = (
    ("calls", "calls answered and checked"),
    ("callbacks", "callbacks (server to client)"),
    ("wrong", "wrong results"),
    ("lost", "lost results"),
    ("dup", "duplicated results"),
    ("failed", "failed calls (raised)"),
    ("connect_failed", "failed connections"),
)
MUST_BE_ZERO = ("wrong", "lost", "dup", "failed", "connect_failed")


def table(r: dict[str, Any], args: argparse.Namespace, why: list[str]) -> str:
    t, c = r["totals"], r["clients"]
    lines = [
        f"Soak: {args.clients} clients ({c['ws']} WebSocket x {args.inflight} operations "
        f"in flight, {c['http']} HTTP batch) in {c['procs']} processes for "
        f"{r['run_seconds']:.1f} s, then SIGKILL with {r['held_calls']} calls in flight and "
        f"{r['held_capabilities']} capabilities held",
        "",
        "| client figure | value |",
        "|---|---:|",
    ]
    for key, label in COUNT_ROWS:
        lines.append(f"| {label} | {t[key]:,} |")
        if key == "calls":
            lines.append(f"| calls/s | {t['calls_per_s']:,.0f} |")
    lines.append(
        f"| server CPU s per 1000 calls | {1000 * r['server_cpu_s'] / max(1, t['calls']):.3f} |"
    )
    lines += [
        "",
        f"| server | before | peak | at kill | kill + {r['just_after_seconds']:.1f} s | after "
        "| rule | back after (s) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    rules = {
        "eq": "= before",
        "le": "<= before",
        "zero": "= 0",
        "rss": f"<= before + {args.rss_tolerance_mb:g}",
        "info": "(info)",
    }
    for key, label, rule in ROWS:
        row = [r[k].get(key) for k in ("before", "peak", "at_kill", "just_after", "after")]
        if key == "rss":
            cells = [f"{v / 2**20:.1f}" if v is not None else "-" for v in row]
        else:
            cells = [f"{v:,}" if v is not None else "-" for v in row]
        back: Any = r["settle_seconds_by_figure"].get(key, "")
        back = "never" if back is None else back if back == "" else f"{back:.1f}"
        lines.append(f"| {label} | {' | '.join(cells)} | {rules[rule]} | {back} |")
    lines += [
        "",
        f"Peak RSS of the server (VmHWM): {r['peak']['peak_rss'] / 2**20:.1f} MiB. Peaks: the "
        "highest of the 1-s samples and the reading at the kill (object counts: at the kill). "
        "Back after: seconds from the SIGKILL until the figure is back at its baseline "
        f"(readings every 0.5 s). The delayed() calls left in flight take {HOLD_MS / 1000:g} s: "
        "a method the disconnect does not cancel keeps its session and target alive until "
        "then (and an HTTP batch it belongs to, its connection too).",
        f"Back at baseline {r['settle_seconds']:.1f} s after the kill"
        if not r["not_settled"]
        else f"Not back at baseline {r['settle_seconds']:.1f} s after the kill: "
        + "; ".join(r["not_settled"]),
        f"Server log: {r['server_log_lines']} line(s) on stderr.",
    ]
    if r["samples_of_errors"]:
        lines.append("Examples: " + " / ".join(r["samples_of_errors"][:5]))
    if r["lost_ops"]:
        lines.append("Lost calls were: " + ", ".join(r["lost_ops"]))
    if r["connect_errors"]:
        lines.append("Connection errors: " + " / ".join(r["connect_errors"]))
    if r["hold_errors"]:
        lines.append("Errors leaving calls in flight: " + " / ".join(r["hold_errors"]))
    lines.append("")
    lines.append("PASS" if not why else "FAIL: " + "; ".join(why))
    return "\n".join(lines)


def source() -> str:
    """The capnweb under test: its directory, commit and whether it has uncommitted changes."""
    where = Path(capnweb.__file__).resolve().parent
    try:
        git = ("git", "-C", str(where))
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    if not head:
        return str(where)
    return f"{where} at {head}" + (" with uncommitted changes" if dirty else "")


def machine() -> dict[str, Any]:
    mem = 0
    try:
        m = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = int(m.group(1)) * 1024 if m else 0
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "mem_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
        "load_avg": os.getloadavg(),
        "capnweb": source(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--clients", type=int, default=500, help="clients in all")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of calls")
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--http-share", type=float, default=0.1, help="share of HTTP batch clients")
    p.add_argument("--inflight", type=int, default=2, help="operations in flight per WS client")
    p.add_argument("--drain", type=float, default=10.0, help="seconds for the last answers")
    p.add_argument("--settle", type=float, default=30.0, help="seconds allowed to settle")
    p.add_argument("--rss-tolerance-mb", type=float, default=16.0, help="RSS growth allowed (MiB)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="FILE", help="write the figures to FILE")
    p.add_argument(
        "--role", choices=("main", "server", "client"), default="main", help=argparse.SUPPRESS
    )
    for name in ("--ws-url", "--http-url"):
        p.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--index", "--ws", "--http"):
        p.add_argument(name, type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--nofile", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.role == "main":
        if args.clients < 1 or args.procs < 1 or args.duration <= 0 or args.inflight < 1:
            p.error("--clients, --procs, --inflight and --duration must be positive")
        args.procs = min(args.procs, args.clients)
        args.nofile = 2 * args.clients + 1024  # each side of every connection, and spare
    return args


def main() -> int:
    args = parse_args()
    if args.role == "server":
        asyncio.run(server_main(args))
        return 0
    if args.role == "client":
        asyncio.run(client_main(args))
        return 0
    nofile = raise_nofile(args.nofile)
    info = machine()
    log(f"open files limit {nofile[0]} (hard {nofile[1]}); {info['cpus']} CPUs")
    try:
        result = asyncio.run(orchestrate(args))
    except RuntimeError as e:  # a process failed or did not answer in time
        print(f"FAIL: {e}")
        return 2
    result["machine"] = info
    why = judge(result, args.rss_tolerance_mb)
    result["pass"] = not why
    result["fail_reasons"] = why
    print(
        f"Machine: {info['cpus']} CPUs, {info['mem_gib']} GiB, Python {info['python']}, "
        f"{info['platform']}; load average at start {info['load_avg'][0]:.2f}"
    )
    print(f"capnweb: {info['capnweb']}")
    print(table(result, args, why))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {out}")
    return 0 if not why else 1


if __name__ == "__main__":
    sys.exit(main())
