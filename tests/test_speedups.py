"""The compiled codec (``capnweb/_speedups.c``): built and in use where a C compiler is at hand,
the same results as the pure-Python codec on any value and any expression (values, errors and
their messages, calls to the session), and no leaked references or memory.

The codec's own tests (test_codec*.py, test_values.py, test_fast_paths.py) run with both.
"""

from __future__ import annotations

import copy
import gc
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from codec_impls import available
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capnweb import URL, BigInt, Limits, RpcLimitError, RpcTarget, _codec, undefined
from capnweb._codec import WireRef
from capnweb.errors import make_error

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
needs_c = pytest.mark.skipif(not available(), reason="capnweb._speedups is not built")


def test_the_compiled_codec_is_built_and_in_use() -> None:
    if os.environ.get("CAPNWEB_PURE_PYTHON", "") not in ("", "0"):
        pytest.skip("CAPNWEB_PURE_PYTHON is set")
    compiler = (sysconfig.get_config_var("CC") or "").split()
    if not compiler or shutil.which(compiler[0]) is None:
        pytest.skip("no C compiler here: capnweb runs in pure Python")
    from capnweb import _speedups  # built by examples/setup.sh (the editable install)

    assert _codec.SPEEDUPS
    assert _codec.encode is _speedups.encode and _codec.decode is _speedups.decode
    assert _codec.dumps is _speedups.dumps and _codec.loads is _speedups.loads
    assert _codec.encode_text is _speedups.encode_text
    assert type(_codec._Encoder.value).__name__ == "method_descriptor"
    assert type(_codec._Decoder.value).__name__ == "method_descriptor"
    source = (ROOT / "capnweb" / "_speedups.c").read_bytes()
    assert hashlib.sha256(source).hexdigest() == _speedups.SOURCE_HASH, (
        "capnweb/_speedups.c changed since it was built: run bash examples/setup.sh"
    )


def test_capnweb_pure_python_turns_the_compiled_codec_off() -> None:
    code = (
        "from capnweb import _codec; "
        "print(_codec.SPEEDUPS, _codec.encode.__module__, _codec.encode_text([1.5, 'é']))"
    )
    env = {**os.environ, "CAPNWEB_PURE_PYTHON": "1", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=True,
    )
    assert proc.stdout.split() == ["False", "capnweb._codec", '[[1.5,"é"]]']


# -- the same results from both implementations


@contextmanager
def implementation(compiled: bool) -> Iterator[None]:
    before = _codec.SPEEDUPS
    _codec._use_speedups(compiled)
    try:
        yield
    finally:
        _codec._use_speedups(before)


def outcome(run: Callable[[], Any]) -> Any:
    """What ``run`` returns, or the type and message of what it raises.

    Python's recursion limit stops a decoding at a depth that depends on the frames each
    implementation spends per level; decode() reports it as the depth limit, and so does this.
    """
    try:
        return ("returns", run())
    except RecursionError:
        return ("raises", "too deep")
    except RpcLimitError as e:
        if str(e).startswith("Deserialization exceeded maximum allowed message depth"):
            return ("raises", "too deep")
        return ("raises", type(e), str(e))
    except Exception as e:
        return ("raises", type(e), str(e))


def same_in_both(run: Callable[[], Any]) -> Any:
    """``run``'s outcome, checked to be the same with the compiled codec and without it."""
    with implementation(True):
        compiled = outcome(run)
    with implementation(False):
        pure = outcome(run)
    assert compiled == pure
    return pure


def containers(x: Any, path: str = "$", found: dict[int, str] | None = None) -> dict[int, str]:
    """The path of every list and dict in ``x``, by id (``x`` must stay alive meanwhile)."""
    found = {} if found is None else found
    if isinstance(x, list | dict) and id(x) not in found:
        found[id(x)] = path
        items = x.items() if isinstance(x, dict) else enumerate(x)
        for k, v in items:
            containers(v, f"{path}[{k!r}]", found)
    return found


def shape(x: Any, known: dict[int, str] | None = None) -> Any:
    """A comparable picture of ``x``: the type at every level, floats spelled out (nan, -0.0),
    and, for the containers in ``known``, which object of the input each one is."""
    t = type(x)
    same = None if known is None else known.get(id(x))
    body: Any
    if isinstance(x, list | tuple):
        body = [shape(i, known) for i in x]
    elif isinstance(x, dict):
        body = [(shape(k, known), shape(v, known)) for k, v in x.items()]
    elif t is float:
        body = repr(x)
    elif isinstance(x, BaseException):
        body = (
            getattr(x, "name", None),
            str(x),
            getattr(x, "stack", None),
            shape(getattr(x, "props", None)),
        )
    else:
        body = repr(x)
    return (t.__name__, same, body)


class Key(str):
    """A str subclass: sent as a plain string."""


class Number(int):
    pass


class Real(float):
    pass


class Target(RpcTarget):
    pass


class Recorder:
    """An exporter and importer that records what the codec asks of it."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    def encode_ref(self, ref: Any) -> list[Any]:
        self.log.append(("ref", shape(ref)))
        return ["import", len(self.log)]

    def encode_target(self, target: Any) -> list[Any]:
        self.log.append(("target", type(target).__name__))
        return ["export", -len(self.log)]

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        self.log.append(("error", type(exc).__name__, str(exc)))
        return None

    def import_ref(
        self,
        promise: bool,
        ref_id: int,
        path: list[str | int] | None,
        args: Callable[[], list[Any]] | None,
    ) -> Any:
        decoded = None if args is None else shape(args())
        self.log.append(("import", promise, ref_id, path, decoded))
        return Ref(len(self.log))

    def export_ref(self, ref_id: int, promise: bool) -> Any:
        self.log.append(("export", ref_id, promise))
        return Ref(len(self.log))

    def remap_ref(
        self, ref_id: int, path: list[str | int], captures: list[Any], instructions: list[Any]
    ) -> Any:
        self.log.append(("remap", ref_id, path, shape(captures), shape(instructions)))
        return Ref(len(self.log))

    def unsupported(self, what: str) -> Any:
        self.log.append(("unsupported", what))
        return Ref(len(self.log))


class Ref(WireRef):
    """What the recording importer returns for a reference."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Ref({self.n})"


UNSENDABLE = object()  # the same object (and repr) in both runs

text = st.text(
    st.one_of(
        st.characters(exclude_categories=()),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
    ),
    max_size=8,
)
ints = st.one_of(
    st.integers(-5, 5),
    st.integers(-(2**53) - 2, -(2**53) + 3),
    st.integers(2**53 - 3, 2**53 + 2),
    st.integers(-(2**70), 2**70),
)
floats = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e-5, 1e-7, math.inf, math.nan]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    text,
    text.map(Key),
    ints.map(Number),
    floats.map(Real),
    ints.map(BigInt),
    st.just(undefined),
    st.binary(max_size=4),
    text.map(URL),
    st.just(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
    st.just(UNSENDABLE),
    st.builds(Target),
    st.just(len),
)
keys = st.one_of(text, text.map(Key), st.integers(0, 2), st.none())


def nest(value: Any, depth: int, kind: str) -> Any:
    for i in range(depth):
        layer = kind if kind != "mixed" else ("list", "dict", "tuple")[i % 3]
        value = [value] if layer == "list" else (value,) if layer == "tuple" else {"k": value}
    return value


def value_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(text, children, max_size=4),
        st.dictionaries(keys, children, max_size=3),
        st.dictionaries(text, children, max_size=3).map(OrderedDict),
        st.builds(make_error, text, text, st.dictionaries(text, children, max_size=2)),
    )


values = st.one_of(
    st.recursive(scalars, value_containers, max_leaves=20),
    st.builds(
        nest,
        st.recursive(scalars, value_containers, max_leaves=3),
        st.integers(250, 258),
        st.sampled_from(["list", "tuple", "dict", "mixed"]),
    ),
)


def encoded(value: Any, with_exporter: bool) -> Any:
    """Everything the encoder gives for ``value``, with the same picture in both runs."""
    known = containers(value)
    recorder = Recorder() if with_exporter else None
    got = outcome(lambda: shape(_codec.encode(value, recorder), known))
    method = outcome(lambda: shape(_codec._Encoder(recorder).value(value, 0), known))
    text = outcome(lambda: _codec.encode_text(value, Recorder() if with_exporter else None))
    if text[0] == "returns":  # its JSON value (the spelling of some floats may differ)
        text = ("returns", shape(json.loads(text[1])))
    return got, method, text, recorder and recorder.log


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(values, st.booleans())
@needs_c
def test_encoding_is_the_same_with_both(value: Any, with_exporter: bool) -> None:
    same_in_both(lambda: encoded(value, with_exporter))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(values)
@needs_c
def test_encode_text_is_dumps_of_encode(value: Any) -> None:
    with implementation(True):
        fused = outcome(lambda: _codec.encode_text(value))
        tree = outcome(lambda: _codec.encode(value))
    if fused[0] == "raises" or tree[0] == "raises":
        assert fused == tree
        return
    try:
        orjson.dumps(tree[1])
    except TypeError:  # dumps fell back to the stdlib: the same JSON, some floats spelled otherwise
        assert shape(json.loads(fused[1])) == shape(json.loads(_codec.dumps(tree[1])))
    else:
        assert fused[1] == _codec.dumps(tree[1])


TRICKY_NUMBERS = [
    *[0.0, -0.0, 1.0, -1.5, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 100.0, 1e15, 1e16, 1e17, 1e21, 1e22],
    *[1e-4, 1e-5, -1e-5, 1.5e-5, 9.99999e-6, 1e-6, 5e-6, 9e-6, 1e-7, 1.2345678901234568e-5],
    *[999999999.9999999, 1e9, 123456789.12345679, 5e-324, 1.7976931348623157e308],
    *[2.0**53, 2.0**53 + 2, -(2.0**60), 0.000123, 1234567.891, 9007199254740993.0],
]
spread_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(lambda m, e: m * 10.0**e, st.floats(-10, 10), st.integers(-12, 22)),
    st.builds(lambda n, d: n / 10**d, st.integers(-(10**12), 10**12), st.integers(0, 12)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(spread_floats, max_size=20))
@needs_c
def test_numbers_are_spelled_as_orjson_spells_them(numbers: list[float]) -> None:
    numbers += TRICKY_NUMBERS
    with implementation(True):
        assert _codec.encode_text(numbers) == orjson.dumps([numbers]).decode()
        ints = [int(x) for x in numbers if abs(x) < 2**53]
        assert _codec.encode_text(ints) == orjson.dumps([ints]).decode()


json_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), ints, st.floats(allow_nan=False), text
)
TAGS = [
    *["undefined", "inf", "-inf", "nan", "bigint", "date", "bytes", "error", "url", "headers"],
    *["request", "response", "import", "pipeline", "export", "promise", "remap", "readable"],
    *["writable", "blob", "regexp"],
]
expressions = st.recursive(
    json_leaves,
    lambda c: st.one_of(
        st.lists(c, max_size=3).map(lambda xs: [xs]),
        st.lists(c, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "__proto__", "toJSON", "body"]), c, max_size=3),
        st.dictionaries(text, c, max_size=2),
        st.tuples(st.sampled_from(TAGS), st.lists(c, max_size=4)).map(lambda t: [t[0], *t[1]]),
        st.tuples(st.sampled_from(["import", "pipeline"]), st.integers(-2, 2), c, c).map(list),
        st.tuples(st.sampled_from(["request", "response"]), text, c).map(list),
        st.tuples(st.just("error"), text, text, json_leaves, c).map(list),
    ),
    max_leaves=14,
)
odd_leaves = st.sampled_from(
    [(1, 2), Key("k"), Number(3), BigInt(2), Real(1.5), b"x", {1, 2}, 2**80, -(10**400)]
)
deep_expressions = st.builds(
    lambda inner, depth, kind: (
        "[[" * depth + inner + "]]" * depth
        if kind == "arrays"
        else '{"a":' * depth + inner + "}" * depth
        if kind == "objects"
        else '["pipeline",0,["f"],[' * depth + inner + "]]" * depth
    ),
    st.sampled_from(["1", '"x"', "[[]]", "{}", '["undefined"]', '["bad"]']),
    st.integers(250, 258),
    st.sampled_from(["arrays", "objects", "calls"]),
).map(json.loads)
limits = st.one_of(st.just(_codec.DEFAULT_LIMITS), st.builds(Limits, max_depth=st.integers(0, 8)))


def decoded(expr: Any, with_importer: bool, fresh: bool, limits: Limits) -> Any:
    mine = copy.deepcopy(expr)  # a fresh decode may rewrite it
    recorder = Recorder() if with_importer else None
    got = outcome(lambda: shape(_codec.decode(mine, recorder, limits, fresh=fresh)))
    decoder = _codec._make_decoder(recorder, limits, fresh)
    method = outcome(lambda: shape(decoder.value(copy.deepcopy(expr), 0)))
    return got, method, recorder and recorder.log


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(expressions, deep_expressions, st.recursive(odd_leaves, st.lists, max_leaves=4)),
    st.booleans(),
    st.booleans(),
    limits,
)
@needs_c
def test_decoding_is_the_same_with_both(
    expr: Any, with_importer: bool, fresh: bool, limits: Limits
) -> None:
    same_in_both(lambda: decoded(expr, with_importer, fresh, limits))


def _utf8_or_invalid(t: str) -> bytes:
    return t.encode("utf-8", "surrogatepass")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
# bytes: UTF-8, or not valid UTF-8 where the text holds a lone surrogate (both must refuse it)
@given(st.one_of(expressions.map(json.dumps), text, text.map(_utf8_or_invalid)), limits)
@needs_c
def test_loading_and_dumping_is_the_same_with_both(message: str | bytes, limits: Limits) -> None:
    def run() -> Any:
        tree = _codec.loads(message, limits)
        return shape(tree), _codec.dumps(tree)

    same_in_both(run)


@pytest.mark.parametrize("depth", range(250, 259))
@pytest.mark.parametrize("kind", ["list", "tuple", "dict", "mixed"])
@needs_c
def test_depth_limits_are_the_same_with_both(depth: int, kind: str) -> None:
    same_in_both(lambda: encoded(nest(1, depth, kind), False))
    exc = RuntimeError("deep")
    exc.deep = nest([], depth - 2, kind)  # type: ignore[attr-defined]
    same_in_both(lambda: encoded(exc, True))
    text = '{"a":' * (depth // 2) + "[[" * (depth - depth // 2) + "1" + "]]" * (depth - depth // 2)
    for fresh in (True, False):
        for importer in (True, False):
            expr = json.loads(text + "}" * (depth // 2))
            same_in_both(lambda: decoded(expr, importer, fresh, _codec.DEFAULT_LIMITS))  # noqa: B023


class Changing:
    """An exporter that changes the container being encoded when it is asked for an export."""

    def __init__(self, change: Callable[[], None]) -> None:
        self.change = change

    def encode_ref(self, ref: Any) -> list[Any]:
        raise AssertionError

    def encode_target(self, target: Any) -> list[Any]:
        self.change()
        return ["export", -1]

    def on_send_error(self, exc: BaseException) -> BaseException | None:
        return None


@pytest.mark.parametrize(
    "change",
    ["list-append", "list-pop", "list-clear", "dict-add", "dict-pop", "dict-replace"],
)
@needs_c
def test_a_container_changed_while_it_is_encoded(change: str) -> None:
    def run() -> Any:
        target = Target()
        items: list[Any] = [1, target, "x", 2]
        obj: dict[str, Any] = {"a": 1, "t": target, "z": [3]}
        changes: dict[str, Callable[[], None]] = {
            "list-append": lambda: items.append([4]),
            "list-pop": lambda: items.pop(),
            "list-clear": items.clear,
            "dict-add": lambda: obj.update(new=1),
            "dict-pop": lambda: obj.pop("z"),
            "dict-replace": lambda: obj.update(z=5),
        }
        value = items if change.startswith("list") else obj
        exporter = Changing(changes[change])
        got = outcome(lambda: shape(_codec.encode(value, exporter)))
        again = outcome(lambda: _codec.encode_text(value, exporter))
        return got, again

    same_in_both(run)


@needs_c
def test_arguments_are_taken_as_the_python_functions_take_them() -> None:
    expr = [["a", {"b": [[1]]}]]
    same_in_both(lambda: shape(_codec.decode(expr=expr, importer=None, limits=Limits(), fresh=0)))
    same_in_both(lambda: shape(_codec.encode(value=(1, 2), exporter=None)))
    same_in_both(lambda: _codec.encode_text(value=[1], exporter=None))
    same_in_both(lambda: shape(_codec.loads(text="[1]", limits=Limits(max_message_size=3))))
    same_in_both(lambda: _codec.dumps(message=[1]))
    for bad in (
        lambda: _codec.encode(),  # type: ignore[call-arg]
        lambda: _codec.encode(1, None, 2),  # type: ignore[call-arg]
        lambda: _codec.decode(1, fresh=True, other=1),  # type: ignore[call-arg]
        lambda: _codec.decode(1, None, Limits(), True),  # type: ignore[misc]
        lambda: _codec.loads(),  # type: ignore[call-arg]
        lambda: _codec.dumps([1], [2]),  # type: ignore[call-arg]
        lambda: _codec._Encoder(None).value(1),  # type: ignore[call-arg]
        lambda: _codec._Decoder(_codec.PlainImporter(), Limits()).value(1, depth="0"),
    ):
        assert same_in_both(bad)[0] == "raises"


# -- no leaks


def test_no_reference_or_memory_leaks() -> None:
    if not available():
        pytest.skip("capnweb._speedups is not built")
    key = "".join(["sha", "red"])  # not interned: its count is ours alone
    leaf = {"k": "v"}
    big = 2**70
    word = "w" * 9
    value = {
        key: [leaf, big, word, 1.5, -0.0, math.nan, (1, 2), {"d": [leaf], "e": "é😀"}],
        "u": undefined,
        "b": b"xy",
        "t": Target(),
        "err": make_error("TypeError", "m", {"p": [leaf]}),
    }
    bad_values = [{"a": [1, UNSENDABLE]}, {key: {1: 2}}, nest(leaf, 300, "mixed"), ["\ud800", leaf]]
    tree = _codec.encode(value, Recorder())
    text = _codec.dumps(tree)
    bad_texts = [
        '[[1,["nope"]]]',
        '{"a":[[1,{"b":["bad"]}]]}',
        "[[" * 300 + "]]" * 300,
        '["error","E","m",null,{"p":[[1]],"q":["x"]}]',
        '["request","u",{"body":[[1,{"a":[[2]]}]]}]',
        '["pipeline",0,["f"],[1,[[2]],{"__proto__":[[3]]}]]',
    ]
    objects = [key, leaf, big, word, value, tree, text, *bad_values]

    def once() -> None:
        recorder = Recorder()
        _codec.encode(value, recorder)
        _codec.encode_text(value, recorder)
        _codec.dumps(_codec.encode(value, recorder))
        _codec.decode(_codec.loads(text), recorder, fresh=True)
        _codec.decode(_codec.loads(text.encode()), recorder)
        _codec.decode(tree, recorder)
        for bad in bad_values:
            with suppress(Exception):
                _codec.encode(bad, recorder)
            with suppress(Exception):
                _codec.encode_text(bad, recorder)
        for bad_text in bad_texts:
            for fresh in (True, False):
                with suppress(Exception):
                    _codec.decode(_codec.loads(bad_text), recorder, fresh=fresh)
                with suppress(Exception):
                    _codec.decode(_codec.loads(bad_text), recorder, Limits(max_depth=3))

    with implementation(True):
        for _ in range(50):
            once()
        gc.collect()
        counts = [sys.getrefcount(o) for o in objects]
        tracemalloc.start()
        try:
            for _ in range(100):
                once()
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(1000):
                once()
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert [sys.getrefcount(o) for o in objects] == counts
        assert after - before < 100_000, f"grew by {after - before} bytes"
