"""Cap'n Web RPC for Python: capability-based, promise-pipelined, wire-compatible with the
TypeScript ``capnweb`` package."""

from ._codec import DEFAULT_LIMITS as DEFAULT_LIMITS
from ._codec import Limits as Limits
from ._target import RpcTarget as RpcTarget
from ._values import INVALID_DATE as INVALID_DATE
from ._values import URL as URL
from ._values import BigInt as BigInt
from ._values import Blob as Blob
from ._values import Headers as Headers
from ._values import JsDate as JsDate
from ._values import Request as Request
from ._values import Response as Response
from ._values import TypedArray as TypedArray
from ._values import UndefinedType as UndefinedType
from ._values import undefined as undefined
from .asgi import AsgiApp as AsgiApp
from .client import Connection as Connection
from .client import connect as connect
from .errors import RpcAggregateError as RpcAggregateError
from .errors import RpcDisconnectedError as RpcDisconnectedError
from .errors import RpcError as RpcError
from .errors import RpcEvalError as RpcEvalError
from .errors import RpcLimitError as RpcLimitError
from .errors import RpcProtocolError as RpcProtocolError
from .errors import RpcRangeError as RpcRangeError
from .errors import RpcReferenceError as RpcReferenceError
from .errors import RpcSyntaxError as RpcSyntaxError
from .errors import RpcTypeError as RpcTypeError
from .errors import RpcURIError as RpcURIError
from .reconnect import Backoff as Backoff
from .reconnect import ReconnectError as ReconnectError
from .reconnect import Reconnecting as Reconnecting
from .reconnect import ResumeTokens as ResumeTokens
from .reconnect import reconnecting as reconnecting
from .server import Cors as Cors
from .server import Endpoint as Endpoint
from .server import Server as Server
from .server import Serving as Serving
from .server import Starting as Starting
from .server import mount as mount
from .server import serve as serve
from .server import serve_websocket as serve_websocket
from .session import Session as Session
from .session import Stats as Stats
from .session import Transport as Transport
from .session import current_session as current_session
from .streams import ReadableStream as ReadableStream
from .streams import WritableStream as WritableStream
from .streams import pipe as pipe
from .stubs import RpcPromise as RpcPromise
from .stubs import RpcStub as RpcStub
from .transports.memory import MemoryTransport as MemoryTransport
from .transports.memory import memory_pair as memory_pair
from .transports.webtransport import serve_webtransport as serve_webtransport

__version__ = "0.1.0"
"""The version of this package (the one source of it: pyproject.toml reads it from here)."""

__all__ = [
    "DEFAULT_LIMITS",
    "INVALID_DATE",
    "URL",
    "AsgiApp",
    "Backoff",
    "BigInt",
    "Blob",
    "Connection",
    "Cors",
    "Endpoint",
    "Headers",
    "JsDate",
    "Limits",
    "MemoryTransport",
    "ReadableStream",
    "ReconnectError",
    "Reconnecting",
    "Request",
    "Response",
    "ResumeTokens",
    "RpcAggregateError",
    "RpcDisconnectedError",
    "RpcError",
    "RpcEvalError",
    "RpcLimitError",
    "RpcPromise",
    "RpcProtocolError",
    "RpcRangeError",
    "RpcReferenceError",
    "RpcStub",
    "RpcSyntaxError",
    "RpcTarget",
    "RpcTypeError",
    "RpcURIError",
    "Server",
    "Serving",
    "Session",
    "Starting",
    "Stats",
    "Transport",
    "TypedArray",
    "UndefinedType",
    "WritableStream",
    "connect",
    "current_session",
    "memory_pair",
    "mount",
    "pipe",
    "reconnecting",
    "serve",
    "serve_websocket",
    "serve_webtransport",
    "undefined",
]
