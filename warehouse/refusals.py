"""How a use case says no, without knowing HTTP: a kind of refusal, a stable code, and a sentence the
operator can act on (and, for a refusal that passes, when to try again). The HTTP layer turns each kind
into its status in one place (warehouse/errors.py); the operator CLI prints the sentence.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """Something the caller asked for that the warehouse will not do, and why."""

    kind = "invalid"

    def __init__(
        self, code: str, detail: str, *, retry_after: int | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.extra = extra or {}


class Unreadable(Refusal):
    """The request itself could not be read (a malformed body or header)."""

    kind = "unreadable"


class NotSignedIn(Refusal):
    kind = "not_signed_in"


class Forbidden(Refusal):
    """The caller's role or units do not allow it."""

    kind = "forbidden"


class NotFound(Refusal):
    """Nothing by that name among what the caller may see."""

    kind = "not_found"


class TooSlow(Refusal):
    """A body arrived too slowly or stalled."""

    kind = "too_slow"


class Conflict(Refusal):
    """It clashes with the record's present state."""

    kind = "conflict"


class TooLarge(Refusal):
    kind = "too_large"


class UnsupportedKind(Refusal):
    """The body is not of a kind this use case takes."""

    kind = "unsupported"


class Invalid(Refusal):
    """A field is missing or breaks a rule."""

    kind = "invalid"


class TooMany(Refusal):
    """A limit on how much or how often was reached: try again after ``retry_after`` seconds."""

    kind = "too_many"


class Busy(Refusal):
    """The warehouse cannot take it right now: try again after ``retry_after`` seconds."""

    kind = "busy"
