"""The audit trail, written in one place: every write, every login, every read of file content.

An ASGI middleware around the whole app records, after the response has gone out, who did what to
which record, with the status, the client address and the request id (also sent as X-Request-ID).
Handlers may add to it through ``request.state``: ``audit_account`` (for logins) and ``audit_details``.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_READS_AUDITED = "audit_reads"  # route opt: record GETs of this route too
_NOT_AUDITED = "not_audited"  # route opt: a public route that changes nothing (anyone's check of a copy)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def audit_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = MutableScopeHeaders(scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        outcome: dict[str, Any] = {"status": 500, "location": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["X-Request-ID"] = request_id
                outcome["status"] = message["status"]
                outcome["location"] = headers.get("location")
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            await _record(scope, outcome["status"], outcome["location"])

    return middleware


async def _record(scope: Scope, status: int, location: str | None) -> None:
    handler = scope.get("route_handler")
    method = str(scope.get("method", "GET"))
    if handler is None or handler.opt.get(_NOT_AUDITED):
        return
    if method not in _WRITE_METHODS and not handler.opt.get(_READS_AUDITED):
        return
    app = scope["app"]
    services = getattr(app.state, "services", None)
    if services is None:
        return
    state: dict[str, Any] = scope.get("state", {})
    principal = scope.get("user")
    account_id = getattr(getattr(principal, "account", None), "id", None) or state.get("audit_account")
    unit_id = getattr(getattr(principal, "account", None), "unit_id", None) or state.get("audit_unit")
    params: dict[str, Any] = scope.get("path_params") or {}
    record_type, record_id = None, None
    for name, value in params.items():
        record_type, record_id = name.removesuffix("_id"), str(value)
        break
    details = dict(state.get("audit_details") or {})
    if location and status == 201:  # a new record: name it, and keep the one it was made in
        if record_id is not None:
            details.setdefault("in", f"{record_type}:{record_id}")
        record_type = location.rstrip("/").split("/")[-2].rstrip("s")
        record_id = location.rstrip("/").split("/")[-1]
    client = scope.get("client")
    try:
        await services.audit.record(
            action=_action(handler, method, scope["path"]),
            account_id=account_id,
            unit_id=unit_id,
            record_type=state.get("audit_record_type", record_type),
            record_id=state.get("audit_record_id", record_id),
            status=status,
            client_addr=client[0] if client else None,
            request_id=state.get("request_id"),
            details=details,
        )
    except Exception as exc:  # the answer has gone out; never turn it into an error now
        log.error("could not write the audit event for %s %s: %s", method, scope.get("path"), exc)


def _action(handler: Any, method: str, path: str) -> str:
    operation_id = getattr(handler, "operation_id", None)
    return operation_id if isinstance(operation_id, str) else f"{method} {path}"


AUDIT_READS = {_READS_AUDITED: True}
NOT_AUDITED = {_NOT_AUDITED: True}
