"""The ``capnweb`` command: ``serve`` an RpcTarget, ``call`` a server from a shell, ``codegen``.

``capnweb serve MODULE:ATTR`` imports ``MODULE`` (the current directory first on
``sys.path``) and serves ``ATTR()`` as each session's main capability until SIGTERM or SIGINT.
With ``--workers N`` the process supervises N worker processes that all listen on one port
(``SO_REUSEPORT``): it forwards the stopping signal to them, starts a new one for each that
dies, and stops everything if one exits before it served (its error is then on stderr). Each
worker writes its pid to a pipe once it listens, and stops if the pipe from its parent closes
(the parent died without stopping it).

``capnweb cert`` writes a short-lived self-signed certificate and its key for serving
WebTransport in development, and prints the certificate's SHA-256 hash (what a browser's
``serverCertificateHashes`` takes).

``capnweb call URL EXPR`` reads ``EXPR`` (``makeCounter(2).increment(3)``) with ``ast``,
replays it on the server's main stub as one pipelined chain, awaits it once and prints the
result as JSON. Exit status: 0 done, 1 failed (remote error, connection, timeout), 2 usage.
The reference is docs/cli.md.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import base64
import contextlib
import dataclasses
import importlib
import inspect
import json
import math
import os
import signal
import socket
import ssl
import sys
import traceback
from collections.abc import AsyncIterable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2

STOP_GRACE = 15.0
"""Seconds workers get to close their connections after the stopping signal, before SIGKILL."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class UsageError(Exception):
    """A command line that cannot be run as given (exit status 2)."""


class Failure(Exception):
    """A command that ran and failed (exit status 1)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, naming the help to read."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    import capnweb

    version = getattr(capnweb, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.metadata import version as installed_version

    return installed_version("capnweb")


# -- capnweb serve


def load_target(spec: str) -> Callable[[], Any]:
    """The callable named ``MODULE:ATTR`` (ATTR may be dotted), imported with the current
    directory on ``sys.path``; it must be callable without arguments."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR (e.g. myapp.server:Api), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name + ".").startswith(e.name + "."):
            raise UsageError(f"no module named {e.name!r} (looked in {cwd} and sys.path)") from e
        traceback.print_exc()
        raise Failure(f"importing {module_name!r} failed: {e}") from e
    except Exception as e:
        traceback.print_exc()
        raise Failure(f"importing {module_name!r} failed: {type(e).__name__}: {e}") from e
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(value):
        raise UsageError(
            f"{spec} is a {type(value).__name__}, not a factory: name a callable that makes "
            "each session's main capability (an RpcTarget class, say)"
        )
    try:
        inspect.signature(value).bind()
    except TypeError as e:
        raise UsageError(f"{spec} cannot be called without arguments: {e}") from None
    except ValueError:
        pass  # no signature to check (a builtin)
    factory: Callable[[], Any] = value
    return factory


def _server_ssl(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    if certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as e:
        raise Failure(f"cannot load the certificate chain {certfile!r}: {e}") from e
    return context


def _check_serve_args(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    if not args.path.startswith("/"):
        raise UsageError(f"--path must start with '/', got {args.path!r}")
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.workers > 1 and args.port == 0:
        raise UsageError("--workers needs a --port other than 0 (each worker would get its own)")
    if args.ssl_keyfile is not None and args.ssl_certfile is None:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    for origin in args.cors_origin or ():
        parts = urlsplit(origin)
        if origin != "*" and not (parts.scheme and parts.netloc and parts.path in ("", "/")):
            raise UsageError(
                f"--cors-origin takes an origin such as https://app.example.com, or '*'; "
                f"got {origin!r}"
            )


def _log(message: str) -> None:
    print(f"capnweb: {message}", file=sys.stderr, flush=True)


def _url(scheme: str, host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{path}"


def _run_serve(args: argparse.Namespace) -> int:
    _check_serve_args(args)
    if args.workers > 1:
        return asyncio.run(_supervise(args))
    worker: tuple[int, int] | None = None
    if args.worker is not None:
        ready_fd, parent_fd = (int(fd) for fd in args.worker.split(","))
        worker = (ready_fd, parent_fd)
    factory = load_target(args.target)
    context = _server_ssl(args.ssl_certfile, args.ssl_keyfile)
    return _run_loop(args.loop, _serve(args, factory, context, worker))


def _run_loop(loop: str, coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` on the event loop chosen with ``--loop``."""
    if loop == "uvloop" or loop == "auto":
        try:
            uvloop: Any = importlib.import_module("uvloop")
        except ImportError:
            if loop == "uvloop":
                coro.close()
                raise UsageError("--loop uvloop: uvloop is not installed") from None
        else:
            result: int = uvloop.run(coro)
            return result
    return asyncio.run(coro)


async def _serve(
    args: argparse.Namespace,
    factory: Callable[[], Any],
    context: ssl.SSLContext | None,
    worker: tuple[int, int] | None,
) -> int:
    """One serving process: until SIGTERM/SIGINT (a second one, outside a worker, stops it
    without waiting for the connections to close) or, in a worker, until its parent is gone."""
    import capnweb

    options: dict[str, Any] = {}
    if context is not None:
        options["ssl"] = context
    if worker is not None:
        options["reuse_port"] = True
    if args.cors_origin:
        options["cors"] = list(args.cors_origin)
    try:
        server = await capnweb.serve(factory, args.host, args.port, args.path, **options)
    except OSError as e:
        raise Failure(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from e
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.current_task()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
        elif worker is None and task is not None:
            task.cancel()  # a second Ctrl-C: do not wait for the connections

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        if worker is None:
            _log(f"serving {args.target} at {server.ws_url} and {server.url} (Ctrl-C to stop)")
        else:
            ready_fd, parent_fd = worker
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"{os.getpid()}\n".encode())
            os.close(ready_fd)

            def on_parent() -> None:
                with contextlib.suppress(OSError):
                    if os.read(parent_fd, 64):
                        return
                loop.remove_reader(parent_fd)
                stop.set()  # end of file: the parent is gone

            loop.add_reader(parent_fd, on_parent)
        await stop.wait()
        try:
            await server.close()
        except asyncio.CancelledError:
            return EXIT_FAILURE
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    return 0


def _worker_command(args: argparse.Namespace, ready_fd: int, parent_fd: int) -> list[str]:
    command = [sys.executable, "-m", "capnweb", "serve", args.target]
    command += ["--host", args.host, "--port", str(args.port), "--path", args.path]
    command += ["--loop", args.loop, "--worker", f"{ready_fd},{parent_fd}"]
    if args.ssl_certfile is not None:
        command += ["--ssl-certfile", args.ssl_certfile]
    if args.ssl_keyfile is not None:
        command += ["--ssl-keyfile", args.ssl_keyfile]
    for origin in args.cors_origin or ():
        command += ["--cors-origin", origin]
    return command


async def _supervise(args: argparse.Namespace) -> int:
    """Run ``args.workers`` serving processes on one port until SIGTERM/SIGINT; returns the
    exit status (a worker's, if one failed to start)."""
    count: int = args.workers
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    ready_r, ready_w = os.pipe()  # workers -> parent: "<pid>\n" once listening
    parent_r, parent_w = os.pipe()  # parent -> workers: closes when the parent is gone
    os.set_blocking(ready_r, False)
    command = _worker_command(args, ready_w, parent_r)
    workers: dict[int, asyncio.subprocess.Process] = {}
    serving: set[int] = set()
    waits: set[asyncio.Task[None]] = set()

    def read_ready() -> None:
        with contextlib.suppress(BlockingIOError):
            for word in os.read(ready_r, 4096).split():
                serving.add(int(word))
                events.put_nowait(("ready", int(word)))

    async def watch(proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        events.put_nowait(("exit", proc))

    async def start() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, pass_fds=(ready_w, parent_r)
        )
        workers[proc.pid] = proc
        task = asyncio.create_task(watch(proc))
        waits.add(task)
        task.add_done_callback(waits.discard)
        return proc

    def send_all(sig: int) -> None:
        for proc in workers.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, events.put_nowait, ("signal", sig))
    loop.add_reader(ready_r, read_ready)
    status = 0
    announced = False
    stop_signal: int = signal.SIGTERM
    schemes = ("wss", "https") if args.ssl_certfile else ("ws", "http")
    try:
        await start()  # one first: a target that cannot start says so once, not N times
        while True:
            kind, value = await events.get()
            if kind == "signal":
                stop_signal = value
                break
            if kind == "ready":
                if len(workers) < count:  # the first is serving: start the others
                    for _ in range(count - len(workers)):
                        await start()
                elif not announced and len(serving & workers.keys()) == count:
                    announced = True
                    where = " and ".join(_url(s, args.host, args.port, args.path) for s in schemes)
                    pids = ", ".join(str(pid) for pid in workers)
                    _log(f"serving {args.target} at {where} with {count} workers (pids {pids})")
                continue
            proc = value
            del workers[proc.pid]
            read_ready()  # a worker that wrote its pid and died: take the pid first
            if proc.pid not in serving:
                _log(f"worker {proc.pid} exited before serving ({_describe(proc.returncode)})")
                status = EXIT_USAGE if proc.returncode == EXIT_USAGE else EXIT_FAILURE
                break
            new = await start()
            _log(f"worker {proc.pid} {_describe(proc.returncode)}; started worker {new.pid}")
        await _stop_workers(workers, events, send_all, stop_signal)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        loop.remove_reader(ready_r)
        for fd in (ready_r, ready_w, parent_r, parent_w):
            os.close(fd)
        for proc in workers.values():  # only if interrupted by an error of our own
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return status


async def _stop_workers(
    workers: dict[int, asyncio.subprocess.Process],
    events: asyncio.Queue[tuple[str, Any]],
    send_all: Callable[[int], None],
    sig: int,
) -> None:
    """Signal every worker and wait for all to exit: SIGKILL after STOP_GRACE seconds, or at
    a second stopping signal."""
    send_all(sig)
    deadline = asyncio.get_running_loop().time() + STOP_GRACE
    killed = False
    while workers:
        try:
            async with asyncio.timeout_at(deadline if not killed else None):
                kind, value = await events.get()
        except TimeoutError:
            kind, value = "signal", None
            _log(f"workers still running after {STOP_GRACE:g} s: killing them")
        if kind == "exit":
            workers.pop(value.pid, None)
        elif kind == "signal" and not killed:
            killed = True
            send_all(signal.SIGKILL)


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


# -- capnweb call

JSON_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "Infinity": math.inf,
    "NaN": math.nan,
}
"""Names that stand for literals in an expression (``undefined`` is added on use)."""

Step = tuple[str, Any]
"""One link of a call chain: ``("get", name_or_index)`` or ``("call", [args])``."""


def parse_expression(text: str) -> list[Step]:
    """The chain of an expression such as ``makeCounter(2).increment(3)``: member reads,
    indexes and calls with literal arguments, starting with a member of the main capability.

    Raises UsageError naming the column of what is not allowed.
    """
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise UsageError(f"invalid expression {text!r}: {e.msg} (column {e.offset})") from None
    return _Reader(text).chain(tree.body)


class _Reader:
    """Turns the ``ast`` of an expression into a chain of steps and Python values."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, node: ast.expr | ast.keyword, problem: str) -> NoReturn:
        segment = ast.get_source_segment(self.text, node) or type(node).__name__
        where = f"column {node.col_offset + 1}"
        if node.lineno > 1:
            where = f"line {node.lineno}, {where}"
        raise UsageError(f"in {self.text!r}, {where}: `{segment}` {problem}")

    def chain(self, node: ast.expr) -> list[Step]:
        if isinstance(node, ast.Name):
            return [("get", node.id)]
        if isinstance(node, ast.Attribute):
            return [*self.chain(node.value), ("get", node.attr)]
        if isinstance(node, ast.Subscript):
            key = node.slice
            if not (isinstance(key, ast.Constant) and type(key.value) in (str, int)):
                self.fail(key, "is not allowed as an index: use a string or an integer")
            return [*self.chain(node.value), ("get", key.value)]
        if isinstance(node, ast.Call):
            if node.keywords:
                self.fail(node.keywords[0], "is a keyword argument: RPC calls take positions")
            return [*self.chain(node.func), ("call", [self.literal(a) for a in node.args])]
        self.fail(
            node,
            "is not a member of the server's main capability: "
            "start with a method or property name, as in square(7)",
        )

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            if type(node.value) in (bool, int, float, str, bytes) or node.value is None:
                return node.value
        elif isinstance(node, ast.Name):
            if node.id == "undefined":
                from capnweb import undefined

                return undefined
            if node.id in JSON_NAMES:
                return JSON_NAMES[node.id]
            self.fail(node, f"is a name, not a literal ({ARGUMENTS})")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.literal(node.operand)
            if type(value) in (int, float):
                return -value if isinstance(node.op, ast.USub) else value
        elif isinstance(node, ast.List | ast.Tuple):
            return [self.literal(e) for e in node.elts]
        elif isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    self.fail(value, "is unpacked: write the object's keys out")
                if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                    self.fail(key, "is not allowed as a key: object keys are strings")
                out[key.value] = self.literal(value)
            return out
        elif isinstance(node, ast.Starred):
            self.fail(node, f"is unpacked: write the values out ({ARGUMENTS})")
        self.fail(node, f"is not a literal ({ARGUMENTS})")


ARGUMENTS = "arguments are numbers, strings, true/false/null/undefined, lists and objects"


def to_json(value: Any) -> Any:
    """``value`` as plain JSON data (docs/cli.md lists the forms); capabilities in it are
    released."""
    import capnweb

    if value is None or isinstance(value, capnweb.UndefinedType):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # (capnweb.URL too)
    if isinstance(value, int):
        return int(value) if abs(value) <= SAFE_INTEGER else str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, capnweb.TypedArray):
        return {"$bytes": base64.b64encode(value.data).decode("ascii"), "$type": value.kind}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, capnweb.JsDate):
        return None if value.ms is None else {"$date": value.ms}
    if isinstance(value, capnweb.Headers):
        return [list(pair) for pair in value]
    if isinstance(value, capnweb.Blob):
        return {"$blob": base64.b64encode(value.data).decode("ascii"), "$type": value.type}
    if isinstance(value, capnweb.RpcStub):
        value.dispose()
        return {"$capability": True}
    if isinstance(value, capnweb.RpcError):
        error: dict[str, Any] = {"name": value.name, "message": value.message}
        return {"$error": error | {k: to_json(v) for k, v in value.props.items()}}
    if isinstance(value, BaseException):
        return {"$error": {"name": type(value).__name__, "message": str(value)}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return repr(value)


SAFE_INTEGER = 2**53 - 1
"""Integers beyond this are printed as strings: JSON readers that use doubles lose digits."""


def _client_ssl(cafile: str | None, insecure: bool) -> ssl.SSLContext | None:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if cafile is None:
        return None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        raise Failure(f"cannot load the CA file {cafile!r}: {e}") from e


def _headers(pairs: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        name, value = name.strip(), value.strip()
        broken = "\r" in value or "\n" in value
        if not sep or not name or broken or any(c.isspace() for c in name):
            raise UsageError(f"--header takes 'Name: value', got {pair!r}")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _run_call(args: argparse.Namespace) -> int:
    scheme = urlsplit(args.url).scheme.lower()
    if scheme not in ("ws", "wss", "http", "https"):
        raise UsageError(f"URL must start with ws://, wss://, http:// or https://: {args.url!r}")
    if args.cafile is not None and args.insecure:
        raise UsageError("--cafile and --insecure exclude each other")
    if args.timeout < 0:
        raise UsageError(f"--timeout must not be negative, got {args.timeout:g}")
    steps = parse_expression(args.expr)
    options: dict[str, Any] = {}
    if args.header:
        options["headers"] = _headers(args.header)
    context = _client_ssl(args.cafile, args.insecure)
    if context is not None:
        options["ssl"] = context
    result = asyncio.run(_call(args.url, steps, options, args.timeout or None))
    if result is not _STREAMED:
        _print_json(result, None if args.compact else 2)
    return 0


def _print_json(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False) + "\n"
    # JSON is UTF-8; a lone surrogate becomes its \\uXXXX escape, still valid JSON
    sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace"))
    sys.stdout.flush()


_STREAMED: Any = object()
"""What ``_call`` returns once it has printed a stream's chunks itself."""


async def _call(url: str, steps: list[Step], options: dict[str, Any], timeout: float | None) -> Any:
    import capnweb

    from ._codec import WireReadable  # received streams, checked ones included

    limit = asyncio.timeout(timeout)
    try:
        async with limit, capnweb.connect(url, **options) as api:
            current: Any = api
            for kind, value in steps:
                current = current[value] if kind == "get" else current(*value)
            result = await current
            if not isinstance(result, WireReadable):
                return to_json(result)
            limit.reschedule(None)  # the timeout is for the answer; a stream runs to its end
            stream: AsyncIterable[Any] = result  # type: ignore[assignment]
            async for chunk in stream:  # one JSON line per chunk, as it arrives
                _print_json(to_json(chunk), None)
            return _STREAMED
    except TimeoutError:
        if limit.expired():
            raise Failure(f"no answer from {url} within {timeout:g} s") from None
        raise Failure(f"cannot connect to {url}: timed out") from None
    except capnweb.RpcDisconnectedError as e:
        raise Failure(str(e)) from e
    except capnweb.RpcError as e:
        raise Failure(f"{e.name}: {e.message}") from e
    except OSError as e:
        raise Failure(f"cannot connect to {url}: {_reason(e)}") from e


def _reason(e: OSError) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"{e.verify_message} (--cafile FILE trusts a CA, --insecure trusts anything)"
    if isinstance(e, socket.gaierror) or e.errno is None or e.errno <= 0:
        return e.strerror or str(e)
    return os.strerror(e.errno)


# -- capnweb cert


def _run_cert(args: argparse.Namespace) -> int:
    try:
        from .transports.webtransport import dev_certificate
    except ImportError as e:  # pragma: no cover - cryptography is in the webtransport extra
        raise Failure(f"{e}: install capnweb[webtransport]") from None
    os.makedirs(args.out, exist_ok=True)
    cert = os.path.join(args.out, "cert.pem")
    key = os.path.join(args.out, "key.pem")
    try:
        digest = dev_certificate(cert, key, days=args.days, hosts=args.host or DEV_HOSTS)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {cert} and {key} (valid {args.days:g} days)", file=sys.stderr)
    print(digest)
    return 0


DEV_HOSTS = ("localhost", "127.0.0.1", "::1")


# -- the command line


SERVE_EXAMPLES = """\
examples:
  capnweb serve myapp:Api                        # Api() per session, on 127.0.0.1:8080/rpc
  capnweb serve examples.typed.server:make_api --port 9000
  capnweb serve myapp:Api --host 0.0.0.0 --workers 4
  capnweb serve myapp:Api --ssl-certfile cert.pem --ssl-keyfile key.pem   # https and wss
  capnweb serve myapp:Api --cors-origin https://app.example.com

It prints where it serves on stderr, and stops on SIGTERM or Ctrl-C (a second one stops it
without waiting for the connections to close).
"""

CALL_EXAMPLES = """\
examples:
  capnweb call ws://127.0.0.1:8080/rpc 'square(7)'
  capnweb call http://127.0.0.1:8080/rpc 'makeCounter(2).increment(3)'
  capnweb call ws://127.0.0.1:8080/rpc 'user("ann").profile.name'
  capnweb call ws://127.0.0.1:8080/rpc 'echo({"a": [1, 2.5, true, null]})'
  capnweb call wss://api.example.com/rpc 'me()' --header 'Authorization: Bearer T'

The chain is sent at once and awaited once: one round trip. Arguments are literals (JSON or
Python: true/false/null/undefined, True/False/None, numbers, strings, lists, objects). The
result is printed as JSON on stdout (bytes as {"$bytes": base64}, a capability as
{"$capability": true}); a remote error as 'error: <name>: <message>' on stderr, status 1.
"""

CERT_EXAMPLES = """\
examples:
  capnweb cert                        # cert.pem and key.pem here, valid 10 days
  capnweb cert --out certs --days 3
  capnweb cert --host localhost --host 192.168.1.20

It prints the certificate's SHA-256 hash (hex) on stdout: pass it to a browser's
new WebTransport(url, {serverCertificateHashes: [{algorithm: "sha-256", value: <its bytes>}]})
or to capnweb.connect(url, webtransport=True, certificate_hashes=[hash]). Browsers accept such a
certificate only if it is valid 14 days at most: make a new one before it expires. For
development only; in production, use a certificate from a CA browsers trust.
"""

CODEGEN_HELP = "generate typed stubs (the arguments of python -m capnweb_codegen; see --help)"


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="capnweb",
        description="Cap'n Web RPC: serve capabilities, call them from a shell, generate stubs.",
        epilog="examples:\n  capnweb serve myapp:Api --port 8080\n"
        "  capnweb call ws://127.0.0.1:8080/rpc 'square(7)'\n"
        "  capnweb cert --out certs\n"
        "  capnweb codegen examples.typed.api --out stubs\n\n"
        "'capnweb COMMAND --help' tells more; the reference is docs/cli.md.",
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"capnweb {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve MODULE:ATTR() to each session, until SIGTERM or Ctrl-C",
        description="Serve the capability made by MODULE:ATTR() for each session, over\n"
        "WebSocket and HTTP batch on one path, until SIGTERM or SIGINT.",
        epilog=SERVE_EXAMPLES,
        formatter_class=raw,
    )
    serve.add_argument(
        "target",
        metavar="MODULE:ATTR",
        help="a callable (an RpcTarget class, say) called once per session for its main "
        "capability; MODULE is imported with the current directory on sys.path",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="0: any free port (%(default)s)")
    serve.add_argument("--path", default="/rpc", help="the RPC endpoint's path (%(default)s)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N processes listening on one port, restarted if they die (%(default)s)",
    )
    serve.add_argument("--ssl-certfile", metavar="FILE", help="PEM certificate chain: serve TLS")
    serve.add_argument("--ssl-keyfile", metavar="FILE", help="PEM private key (if not in cert)")
    serve.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="an origin whose web pages may call the batch endpoint, '*' for any; repeatable",
    )
    serve.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )
    serve.add_argument("--worker", help=argparse.SUPPRESS)  # READY_FD,PARENT_FD: see module

    call = commands.add_parser(
        "call",
        help="call a server once and print the result as JSON",
        description="Make one pipelined call on the server's main capability and print\n"
        "the result as JSON.",
        epilog=CALL_EXAMPLES,
        formatter_class=raw,
    )
    call.add_argument("url", metavar="URL", help="ws://, wss:// (WebSocket), http://, https://")
    call.add_argument("expr", metavar="EXPR", help="a chain such as 'makeCounter(2).increment(3)'")
    call.add_argument(
        "--header",
        "-H",
        action="append",
        metavar="'NAME: VALUE'",
        help="an HTTP header for the request or the WebSocket handshake; repeatable",
    )
    call.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds for the whole call, connecting included; 0: none (%(default)g)",
    )
    call.add_argument("--cafile", metavar="FILE", help="trust the CAs of this PEM file (TLS)")
    call.add_argument(
        "--insecure", "-k", action="store_true", help="do not verify the server's certificate"
    )
    call.add_argument("--compact", action="store_true", help="print the JSON on one line")

    cert = commands.add_parser(
        "cert",
        help="make a development certificate for WebTransport and print its hash",
        description="Write a self-signed ECDSA P-256 certificate (cert.pem) and its key\n"
        "(key.pem) for serving WebTransport in development; print its SHA-256 hash.",
        epilog=CERT_EXAMPLES,
        formatter_class=raw,
    )
    cert.add_argument("--out", default=".", metavar="DIR", help="where to write (%(default)s)")
    cert.add_argument(
        "--days", type=float, default=10.0, help="validity, under 14 days (%(default)g)"
    )
    cert.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="a host name or address it is for; repeatable (localhost, 127.0.0.1, ::1)",
    )

    commands.add_parser("codegen", help=CODEGEN_HELP, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``capnweb`` command line; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["codegen"]:
        from capnweb_codegen.__main__ import main as codegen

        return codegen(args_list[1:])
    args = _parser().parse_args(args_list)
    prog = f"capnweb {args.command}"
    try:
        if args.command == "serve":
            return _run_serve(args)
        if args.command == "cert":
            return _run_cert(args)
        return _run_call(args)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
