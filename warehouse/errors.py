"""Problem details (RFC 9457) for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from litestar import MediaType, Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from storage import BodyLengthMismatch, ObjectNotFound, ObjectStoreUnavailable, ObjectTooLarge, StorageError
from warehouse import messages_vi
from warehouse.refusals import Refusal

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://kho-so-hoa.invalid/problems/"


# The one place a refusal's kind becomes an HTTP status.
STATUS_OF_KIND = {
    "unreadable": 400,
    "not_signed_in": 401,
    "forbidden": 403,
    "not_found": 404,
    "too_slow": 408,
    "conflict": 409,
    "too_large": 413,
    "unsupported": 415,
    "invalid": 422,
    "too_many": 429,
    "busy": 503,
}
_KIND_OF_STATUS = {status: kind for kind, status in STATUS_OF_KIND.items()}


class Problem(Refusal):
    """A refusal of the HTTP layer itself (sign-in middleware, fair-share limits, the framework's own
    errors), which knows its status. Use cases raise the kinds in warehouse/refusals.py instead."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code, detail, extra=extra)
        self.kind = _KIND_OF_STATUS.get(status, "invalid")
        self.status = status
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}

    @classmethod
    def of(cls, refusal: Refusal) -> Problem:
        """The HTTP answer to a use case's refusal."""
        if isinstance(refusal, Problem):
            return refusal
        status = STATUS_OF_KIND[refusal.kind]
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after is not None else {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="warehouse"'
        return cls(status, refusal.code, refusal.detail, headers=headers, extra=refusal.extra)


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}

# Codes for errors Litestar raises itself, before a handler runs.
_DEFAULT_CODES = {
    400: ("bad_request", "The request could not be read. Check its format and try again."),
    401: ("unauthenticated", "Sign in first: send a bearer token or an API key."),
    403: ("forbidden", "Your account may not do this."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("too_large", "The request body is larger than this warehouse accepts."),
    415: ("unsupported_media_type", "This address does not accept that content type."),
    429: ("rate_limited", "Too many requests. Wait a moment and try again."),
}


def problem_response(problem: Problem, request: Request[Any, Any, Any] | None = None) -> Response[Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    }
    headers = dict(problem.headers)
    if request is not None:
        body["instance"] = request.url.path
        if problem.code in messages_vi.DETAILS and messages_vi.wants_vietnamese(request.headers.get("accept-language")):
            body["title"] = messages_vi.TITLES.get(problem.status, problem.title)
            body["detail"] = messages_vi.DETAILS[problem.code]
            body["detail_en"] = problem.detail  # with the request's own values
            headers["Content-Language"] = "vi"
    body.update(problem.extra)
    return Response(content=body, status_code=problem.status, media_type=PROBLEM_JSON, headers=headers)


def answer_problems(app: ASGIApp) -> ASGIApp:
    """Answer a refusal raised by a middleware (sign-in, fair-share limits) right here.

    Placed just inside the metrics middleware, so /metrics counts a refused request as the 401, 403
    or 429 it is (an exception passing through that middleware is counted as a 200)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracking)
        except Refusal as exc:
            if scope["type"] != ScopeType.HTTP or started:
                raise
            request: Request[Any, Any, Any] = Request(scope, receive)
            await problem_response(Problem.of(exc), request).to_asgi_response(None, request)(scope, receive, send)

    return middleware


def _on_refusal(request: Request[Any, Any, Any], exc: Refusal) -> Response[Any]:
    return problem_response(Problem.of(exc), request)


def _on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, ValidationException) or (status == 400 and exc.extra):
        fields = _field_errors(exc.extra)
        detail = (
            "Some fields are missing or invalid: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields)
            if fields
            else (exc.detail or "The request body is not valid JSON of the expected shape.")
        )
        return problem_response(Problem(422, "invalid_fields", detail, extra={"errors": fields}), request)
    code, sentence = _DEFAULT_CODES.get(status, ("http_error", exc.detail or "The request failed."))
    headers = dict(exc.headers or {})
    return problem_response(Problem(status, code, sentence, headers=headers), request)


def _field_errors(extra: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                key = str(item.get("key") or item.get("source") or "body")
                out.append({"field": key, "message": str(item.get("message", "invalid"))})
    return out


def _on_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, ObjectStoreUnavailable):
        which, code = "file storage", "storage_unavailable"
    elif isinstance(exc, RedisError):
        which, code = "queue", "queue_unavailable"
    else:
        which, code = "database", "database_unavailable"
    log.warning("%s unavailable during %s %s: %s", which, request.method, request.url.path, exc)
    return problem_response(
        Problem(
            503,
            code,
            f"The warehouse's {which} is not answering right now. Nothing was saved; try again in a little while.",
            headers={"Retry-After": "10"},
        ),
        request,
    )


def _on_bad_value(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A value Postgres cannot take (a NUL character in text, a number out of range): the caller's."""
    log.info("refused a value on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        Problem(
            422,
            "invalid_value",
            "A value in this request cannot be stored: a number is out of range, or a text contains a "
            "character that is not allowed (such as a NUL byte). Correct it and send the request again.",
        ),
        request,
    )


def _on_storage(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Object-store errors that reached no handler of their own, by whose fault they are."""
    if isinstance(exc, ObjectStoreUnavailable):
        return _on_unavailable(request, exc)
    if isinstance(exc, BodyLengthMismatch):
        problem = Problem(400, "body_length_mismatch", "The body did not match its Content-Length. Send it again.")
    elif isinstance(exc, ObjectTooLarge):
        problem = Problem(413, "too_large", f"The body is larger than the {exc.limit} bytes accepted here.")
    elif isinstance(exc, ObjectNotFound):
        log.error("stored bytes missing on %s %s: %s", request.method, request.url.path, exc)
        problem = Problem(
            404, "content_missing", "The bytes of this record are missing from storage. Tell the administrator."
        )
    else:
        return _on_unexpected(request, exc)
    return problem_response(problem, request)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        Problem(
            500,
            "internal_error",
            "Something went wrong inside the warehouse. The request was not completed; "
            "if it keeps happening, tell the administrator.",
        ),
        request,
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Refusal: _on_refusal,  # a use case's refusal, or the HTTP layer's own Problem
    HTTPException: _on_http_exception,
    # Bad values, from Postgres (SQLSTATE class 22) and from the driver's encoding of arguments.
    asyncpg.exceptions.DataError: _on_bad_value,
    asyncpg.exceptions._base.DataError: _on_bad_value,
    RecursionError: _on_bad_value,
    StorageError: _on_storage,
    asyncpg.exceptions.CannotConnectNowError: _on_unavailable,
    asyncpg.exceptions.ConnectionDoesNotExistError: _on_unavailable,
    asyncpg.exceptions.InterfaceError: _on_unavailable,
    asyncpg.exceptions.AdminShutdownError: _on_unavailable,
    asyncpg.exceptions.PostgresConnectionError: _on_unavailable,
    asyncpg.exceptions.OperatorInterventionError: _on_unavailable,
    # a pooled connection left mid-operation when the server went away
    asyncpg.exceptions.InternalClientError: _on_unavailable,
    ConnectionError: _on_unavailable,
    OSError: _on_unavailable,
    Exception: _on_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "Problem", "answer_problems", "problem_response"]
