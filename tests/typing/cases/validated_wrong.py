# ruff: noqa: E501
"""Wrong uses of checked results: the line after each ``# E:`` comment must fail
``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

import capnweb
from capnweb.typed import validated
from stubs.examples_typed_api import ApiStub


def wrong(url: str) -> None:
    # E: No overload variant of "connect" matches argument types "str", "bool"  [call-overload]
    capnweb.connect(url, validate=True)
    # E: No overload variant of "connect" matches argument types "str", "type[ApiStub]", "str"  [call-overload]
    capnweb.connect(url, ApiStub, validate="yes")
    # E: Value of type variable "S" of "validated" cannot be "int"  [type-var]
    validated(int)
