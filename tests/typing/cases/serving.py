"""A user's script: connect() with its options and every way of serving, under mypy --strict."""

from __future__ import annotations

import ssl

import aiohttp
from aiohttp import web

import capnweb
from stubs.examples_typed_api import ApiStub


class Api(capnweb.RpcTarget):
    def square(self, i: int) -> int:
        return i * i


async def client(context: ssl.SSLContext, http: aiohttp.ClientSession) -> int:
    limits = capnweb.Limits(max_depth=32)
    async with capnweb.connect(
        "wss://rpc.example.com/rpc",
        ApiStub,
        main=Api(),
        limits=limits,
        headers={"Authorization": "Bearer x"},
        ssl=context,
    ) as api:
        result: int = await api.square(3)
    async with capnweb.connect("https://rpc.example.com/rpc", http=http, ssl=context) as raw:
        await raw.square(4)
    return result


async def servers(app: web.Application) -> int:
    serving: list[capnweb.Serving] = []
    async with capnweb.serve(Api, host="127.0.0.1", port=0) as server:
        serving.append(server)
        print(server.url, server.ws_url, server.port)
    serving.append(capnweb.mount(app, "/rpc", Api))
    serving.append(capnweb.AsgiApp(Api))
    serving.append(await capnweb.serve_websocket(Api, port=0))
    for s in serving:
        await s.close()
        await s.wait_closed()
    return sum(s.live_sessions for s in serving)
