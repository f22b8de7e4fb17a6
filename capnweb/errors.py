"""Errors that cross the wire, and the mapping between Python and JavaScript error types.

A remote error arrives as an :class:`RpcError` (or one of its subclasses) carrying the
JavaScript ``name``, the ``message`` and any extra ``props``. Subclasses also inherit the
Python built-in that matches their meaning, so ``except TypeError`` catches a remote
``TypeError``. Outgoing Python exceptions are named by :func:`js_error_name`.

The table of names, both ways, is in ``docs/values.md`` (section "Errors").
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

__all__ = [
    "RpcAggregateError",
    "RpcDisconnectedError",
    "RpcError",
    "RpcEvalError",
    "RpcLimitError",
    "RpcProtocolError",
    "RpcRangeError",
    "RpcReferenceError",
    "RpcSyntaxError",
    "RpcTypeError",
    "RpcURIError",
    "js_error_name",
    "make_error",
]


class RpcError(Exception):
    """An error with a JavaScript name, a message and extra properties, as sent on the wire."""

    default_name: ClassVar[str] = "Error"

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        props: dict[str, Any] | None = None,
        stack: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name or self.default_name
        self.props: dict[str, Any] = props or {}
        self.stack = stack

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = f", props={self.props!r}" if self.props else ""
        return f"{type(self).__name__}({self.message!r}, name={self.name!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RpcError)
            and type(other) is type(self)
            and (self.name, self.message, self.props) == (other.name, other.message, other.props)
        )

    __hash__ = Exception.__hash__


class RpcTypeError(RpcError, TypeError):
    """A remote ``TypeError``."""

    default_name = "TypeError"


class RpcRangeError(RpcError, ValueError):
    """A remote ``RangeError``."""

    default_name = "RangeError"


class RpcReferenceError(RpcError, NameError):  # type: ignore[misc]
    """A remote ``ReferenceError``."""

    default_name = "ReferenceError"


class RpcSyntaxError(RpcError):
    """A remote ``SyntaxError``."""

    default_name = "SyntaxError"


class RpcEvalError(RpcError):
    """A remote ``EvalError``."""

    default_name = "EvalError"


class RpcURIError(RpcError):
    """A remote ``URIError``."""

    default_name = "URIError"


class RpcAggregateError(RpcError):
    """A remote ``AggregateError``; the inner errors are in :attr:`errors`."""

    default_name = "AggregateError"

    @property
    def errors(self) -> list[Any]:
        """The aggregated errors, as received in the ``errors`` property."""
        value = self.props.get("errors")
        return list(value) if isinstance(value, list) else []


class RpcDisconnectedError(RpcError):
    """The session ended (transport closed, peer aborted, or the main stub was disposed)."""


class RpcProtocolError(RpcError):
    """The peer sent something the protocol does not allow; the session is aborted."""


class RpcLimitError(RpcTypeError):
    """An incoming message broke a receiver-side limit (size, depth or bigint length)."""


_BY_NAME: Final[dict[str, type[RpcError]]] = {
    cls.default_name: cls
    for cls in (
        RpcError,
        RpcTypeError,
        RpcRangeError,
        RpcReferenceError,
        RpcSyntaxError,
        RpcEvalError,
        RpcURIError,
        RpcAggregateError,
    )
}


def make_error(
    name: str, message: str, props: dict[str, Any] | None = None, stack: str | None = None
) -> RpcError:
    """Build the Python exception for a received wire error; unknown names keep their name."""
    cls = _BY_NAME.get(name, RpcError)
    return cls(message, name=name, props=props, stack=stack)


def js_error_name(exc: BaseException) -> str:
    """The JavaScript error name an outgoing Python exception is sent with (docs/values.md)."""
    if isinstance(exc, RpcError):
        return exc.name
    if isinstance(exc, TypeError):
        return "TypeError"
    if isinstance(exc, ValueError | IndexError | OverflowError):
        return "RangeError"
    if isinstance(exc, NameError):
        return "ReferenceError"
    if isinstance(exc, SyntaxError):
        return "SyntaxError"
    if isinstance(exc, BaseExceptionGroup):
        return "AggregateError"
    return "Error"


def error_props(exc: BaseException) -> dict[str, Any]:
    """Extra properties of an outgoing exception: public attributes, ``cause``, ``errors``."""
    if isinstance(exc, RpcError):
        props = dict(exc.props)
    else:
        props = {
            k: v
            for k, v in vars(exc).items()
            if not k.startswith("_") and k not in ("name", "message", "stack", "args")
        }
    cause = exc.__cause__
    if cause is not None and "cause" not in props:
        props["cause"] = cause
    if isinstance(exc, BaseExceptionGroup) and "errors" not in props:
        props["errors"] = list(exc.exceptions)
    return props


def error_message(exc: BaseException) -> str:
    """The message an outgoing exception is sent with."""
    if isinstance(exc, RpcError):
        return exc.message
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return repr(exc.args[0])
    if isinstance(exc, BaseExceptionGroup):
        return exc.message
    return str(exc)
