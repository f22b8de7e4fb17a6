# ruff: noqa: E501, B018
"""Wrong uses of connect() and the serving API: the line after each ``# E:`` comment must fail
``mypy --strict`` with exactly that message, and no other line may."""

from __future__ import annotations

import capnweb


async def wrong() -> None:
    # E: Unexpected keyword argument "hedaers" for overloaded function "connect"; did you mean "headers"?  [call-overload]
    # E: No overload variant of "connect" matches argument types "str", "str"  [call-overload]
    capnweb.connect("ws://127.0.0.1:8080/rpc", hedaers="x")
    # E: No overload variant of "connect" matches argument types "str", "bool"  [call-overload]
    capnweb.connect("wss://127.0.0.1:8080/rpc", ssl=True)
    server = await capnweb.serve(capnweb.RpcTarget)
    # E: "Server" has no attribute "sessions"; maybe "live_sessions"?  [attr-defined]
    server.sessions
