"""The description of an RPC interface (``capnweb.interface.describe``): what the dispatcher and
the code generator both read."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from capnweb import RpcStub, RpcTarget
from capnweb.interface import (
    camel_case,
    describe,
    interfaces_of,
    is_capability_type,
    is_data_class,
    is_interface,
    rpc_interface,
    rpc_method,
    rpc_property,
    union_args,
)


@dataclass
class Point:
    x: int
    y: int


@rpc_interface(names=camel_case)
class Shapes(Protocol):
    """Shapes on a canvas."""

    @rpc_method
    async def add_point(self, where: Point, label: str = "", weight: float | None = None) -> int:
        """Add a point; returns its index."""

    @rpc_method(name="erase")
    def clear_all(self) -> None: ...

    @property
    @rpc_property
    def point_count(self) -> int:
        """How many points there are."""

    @rpc_method
    def child(self) -> Shapes: ...

    @rpc_method
    def later(self) -> Awaitable[list[Point]]: ...

    @rpc_method
    def on_change(self, callback: Callable[[int], Awaitable[None]]) -> None: ...

    def not_remote(self) -> int: ...


class Plain(Protocol):
    @rpc_method
    def one(self, a: int, *rest: Any) -> int: ...


def test_members_by_python_name_with_wire_names() -> None:
    iface = describe(Shapes)
    assert list(iface.members) == [
        "add_point",
        "clear_all",
        "point_count",
        "child",
        "later",
        "on_change",
    ]
    wires = {m.name: m.wire_name for m in iface.members.values()}
    assert wires == {
        "add_point": "addPoint",
        "clear_all": "erase",  # an explicit name wins over the policy
        "point_count": "pointCount",
        "child": "child",
        "later": "later",
        "on_change": "onChange",
    }
    assert set(iface.by_wire_name) == set(wires.values())
    assert iface.ref == f"{__name__}:Shapes"
    assert iface.doc == "Shapes on a canvas."


def test_without_a_policy_wire_names_are_python_names() -> None:
    assert [m.wire_name for m in describe(Plain).members.values()] == ["one"]


def test_parameters_annotations_defaults_and_string_annotations_resolved() -> None:
    # this module uses `from __future__ import annotations`: every annotation is a string here
    member = describe(Shapes).members["add_point"]
    assert [(p.name, p.annotation, p.required) for p in member.params] == [
        ("where", Point, True),
        ("label", str, False),
        ("weight", float | None, False),
    ]
    assert member.params[1].default == ""
    assert member.params[2].default is None
    assert member.kind == "method"
    assert member.is_async
    assert member.doc == "Add a point; returns its index."


def test_returns_unwrap_awaitables_and_keep_forward_references() -> None:
    members = describe(Shapes).members
    assert members["add_point"].returns is int
    assert members["later"].returns == list[Point]
    assert not members["later"].is_async
    assert members["child"].returns is Shapes  # a forward reference to the class itself
    assert members["clear_all"].returns is type(None)


def test_properties() -> None:
    prop = describe(Shapes).members["point_count"]
    assert prop.kind == "property"
    assert prop.params == ()
    assert prop.returns is int
    assert prop.doc == "How many points there are."


def test_variadic_methods_are_marked() -> None:
    member = describe(Plain).members["one"]
    assert member.variadic
    assert [p.name for p in member.params] == ["a"]


def test_decorators_return_the_function_unchanged() -> None:
    def f(self: Any) -> int:
        return 1

    assert rpc_method(f) is f
    assert rpc_method(name="g")(f) is f
    assert rpc_property(f) is f
    assert rpc_interface(Plain) is Plain
    assert inspect.signature(Shapes.add_point).parameters["label"].default == ""


def test_members_of_base_interfaces_are_included() -> None:
    class MoreShapes(Shapes, Protocol):
        @rpc_method
        def remove(self, index: int) -> None: ...

    iface = describe(MoreShapes)
    assert "add_point" in iface.members and "remove" in iface.members
    assert iface.members["remove"].wire_name == "remove"
    assert iface.members["add_point"].wire_name == "addPoint"  # the base's policy applies


def test_interfaces_of_an_implementation() -> None:
    class Impl(RpcTarget, Plain):
        def one(self, a: int, *rest: Any) -> int:
            return a

    assert [i.cls for i in interfaces_of(Impl)] == [Plain]
    assert is_interface(Shapes) and is_interface(Plain)
    assert not is_interface(Impl) and not is_interface(Point) and not is_interface(int)


def test_classifying_types() -> None:
    assert is_capability_type(Shapes)
    assert is_capability_type(RpcStub)
    assert is_capability_type(Callable[[int], None])
    assert not is_capability_type(Point)
    assert is_data_class(Point)
    assert not is_data_class(Shapes)
    assert union_args(int | None) == (int, type(None))
    assert union_args(int) is None


def test_keyword_only_parameters_are_refused() -> None:
    class KeywordOnly(Protocol):
        @rpc_method
        def f(self, a: int, *, b: int) -> None: ...

    with pytest.raises(TypeError, match="keyword-only parameter 'b'"):
        describe(KeywordOnly)


def test_duplicate_wire_names_are_refused() -> None:
    @rpc_interface(names=camel_case)
    class Clash(Protocol):
        @rpc_method
        def get_user(self) -> None: ...

        @rpc_method
        def getUser(self) -> None: ...

    with pytest.raises(TypeError, match="share wire name 'getUser'"):
        describe(Clash)


def test_explicit_name_clashing_with_another_member_is_refused() -> None:
    class Clash(Protocol):
        @rpc_method(name="b")
        def a(self) -> None: ...

        @rpc_method
        def b(self) -> None: ...

    with pytest.raises(TypeError, match="share wire name 'b'"):
        describe(Clash)


def test_private_remote_names_are_refused() -> None:
    class Private(Protocol):
        @rpc_method
        def _hidden(self) -> None: ...

    with pytest.raises(TypeError, match="cannot start with _"):
        describe(Private)


def test_unresolvable_annotations_are_reported() -> None:
    class Broken(Protocol):
        @rpc_method
        def f(self, a: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match=r"cannot resolve the annotations of .*Broken\.f"):
        describe(Broken)


def test_a_class_without_remote_members_is_not_an_interface() -> None:
    class Nothing(Protocol):
        def f(self) -> None: ...

    with pytest.raises(TypeError, match="declares no @rpc_method"):
        describe(Nothing)
