"""Keeping clients' connections honest.

A client that sends a request on a kept-alive connection must be able to trust the server to read it.
The server cannot, after answering before it read the request's whole body (a refusal such as 401,
413 or 429 sent while a scan is still arriving): the rest of that body sits in the connection, so the
server closes it. Such an answer therefore says ``Connection: close``, and the client opens a new
connection for its next request instead of losing that request to a connection about to close.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


def close_after_unread_body(app: ASGIApp) -> ASGIApp:
    """Wrap the whole application: answers sent before the request's body was read end the connection
    cleanly (``Connection: close``) rather than silently."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not _has_body(scope):
            await app(scope, receive, send)
            return
        read_all = False

        async def tracked_receive() -> ReceiveMessage:
            nonlocal read_all
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                read_all = True
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not read_all:
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await app(scope, tracked_receive, tracked_send)

    return handler
