"""Sharing outward over HTTP: the change feed, and the push subscriptions administrators register."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from storage.feed import KINDS, link
from warehouse.api.deps import Caller, Deps
from warehouse.api.units import UnitCode
from warehouse.auth import admins_only
from warehouse.errors import Problem
from warehouse.feed import (
    change_subscription,
    create_subscription,
    end_cursor,
    manages,
    read_feed,
    rotate_secret,
    subscription_for,
    view,
)

Kind = Literal[KINDS]  # type: ignore[valid-type]
Profile = Literal["warehouse", "portal"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000)]


class ChangeOut(msgspec.Struct):
    """One change: what happened (`kind`), to which record (`id`), its `version` (the change's feed
    position: it grows with each change of the record), when, in which unit, the record as it was
    after the change, and where the API shows it now."""

    kind: str
    id: str
    version: int
    at: datetime
    unit: str
    dossier_id: UUID
    link: str
    # the record as it was after the change (passed on as stored)
    record: Annotated[msgspec.Raw, msgspec.Meta(extra_json_schema={"type": "object"})]


class FeedPage(msgspec.Struct):
    """`next` is the cursor to read after; `more` says whether changes are waiting past it."""

    items: list[ChangeOut]
    next: str
    more: bool


class FeedEnd(msgspec.Struct):
    cursor: str


class SubscriptionIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    url: Url
    # `warehouse`: every change as the feed shows it; `portal`: the national portal's result records
    profile: Profile = "warehouse"
    kinds: Annotated[list[Kind], msgspec.Meta(max_length=len(KINDS))] | None = None
    # the units it covers, each with the units below it; left out: the administrator's own unit
    units: Annotated[list[UnitCode], msgspec.Meta(max_length=300)] | None = None
    # `now`: changes from now on; `beginning`: every change the feed holds first
    start: Literal["now", "beginning"] = "now"


class SubscriptionPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    url: Url | None = None
    profile: Profile | None = None
    kinds: Annotated[list[Kind], msgspec.Meta(max_length=len(KINDS))] | None = None
    units: Annotated[list[UnitCode], msgspec.Meta(max_length=300)] | None = None


class SubscriptionOut(msgspec.Struct):
    """A receiver and how it keeps up: `pending` deliveries (with the oldest one's age, `lag_seconds`),
    `behind` (changes not yet looked at), `dead` ones parked after `webhook_retry_hours`, the last error,
    and when it is tried next (`retry_at`) while it fails. `secret` is shown once, when it is made."""

    id: UUID
    name: str
    url: str
    profile: str
    kinds: list[str]
    units: list[str] | None
    state: str
    paused_reason: str | None
    paused_at: datetime | None
    pending: int
    dead: int
    behind: int
    oldest_pending_at: datetime | None
    lag_seconds: float
    last_delivered_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_status: int | None
    retry_at: datetime | None
    previous_secret_until: datetime | None
    created_by: int
    created_at: datetime
    updated_at: datetime
    secret: str | None = None


class DeadLetterOut(msgspec.Struct):
    id: UUID
    version: int
    kind: str
    record: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_tried_at: datetime | None
    created_at: datetime


class DeadLetterPage(msgspec.Struct):
    items: list[DeadLetterOut]
    next: int | None


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True):
    """The dead deliveries to send again (left out: all of them)."""

    ids: Annotated[list[UUID], msgspec.Meta(max_length=1000)] | None = None


class ReplayOut(msgspec.Struct):
    replayed: int


class FeedController(Controller):
    path = "/api/v1/feed"
    tags = ["sharing"]

    @get("/", operation_id="read_feed")
    async def read(
        self,
        request: Caller,
        services: Deps,
        after: Annotated[str | None, QueryParameter(max_length=40)] = None,
        kinds: Annotated[str | None, QueryParameter(max_length=400)] = None,
        unit: Annotated[str | None, QueryParameter(max_length=35)] = None,
        limit: Annotated[int | None, QueryParameter(ge=1)] = None,
    ) -> FeedPage:
        """Every change in the caller's units, in the order it was committed: dossiers created, changed
        and deleted; files accepted, rejected and deleted; result codes issued and withdrawn. Start
        without `after`; then pass the page's `next`. A change committed late is never skipped; a page
        may be short or empty while `more` is true (few changes in your units), so read on until it is
        false. `kinds` is a comma-separated list; `unit` narrows to a unit and the units below it."""
        size = limit or 100
        if size > services.settings.feed_page_max:
            raise Problem(422, "limit_too_large", f"limit may be at most {services.settings.feed_page_max}.")
        page = await read_feed(services, request.user, after=after, kinds=kinds, unit=unit, limit=size)
        base = services.settings.public_base_url.rstrip("/")
        items = [
            ChangeOut(
                kind=c.kind,
                id=c.record,
                version=c.pos,
                at=c.at,
                unit=c.unit_code,
                dossier_id=c.dossier_id,
                link=base + link(c),
                record=msgspec.Raw(c.data.encode()),
            )
            for c in page.changes
        ]
        return FeedPage(items=items, next=page.next, more=page.more)

    @get("/end", operation_id="feed_end")
    async def end(self, services: Deps) -> FeedEnd:
        """The cursor of the newest change: a consumer that wants only what comes next starts here
        (pass it as `after`)."""
        return FeedEnd(cursor=await end_cursor(services))


class SubscriptionsController(Controller):
    path = "/api/v1/subscriptions"
    tags = ["sharing"]

    @post("/", operation_id="create_subscription", guards=[admins_only], status_code=HTTP_201_CREATED)
    async def create(
        self, data: JSONBody[SubscriptionIn], request: Caller, services: Deps
    ) -> Response[SubscriptionOut]:
        """Register a receiver (administrators, for units they administer). Deliveries are signed with
        the returned `secret` (shown only now) following Standard Webhooks: headers `webhook-id`,
        `webhook-timestamp`, `webhook-signature`. The receiver must answer 2xx; 410 pauses the
        subscription; anything else is retried with backoff, then parked among its dead letters."""
        made = await create_subscription(
            services,
            request.user,
            name=data.name,
            url=data.url,
            profile=data.profile,
            kinds=list(data.kinds) if data.kinds is not None else None,
            units=data.units,
            start=data.start,
        )
        return Response(
            msgspec.convert(made.out(), SubscriptionOut),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/subscriptions/{made.sub.id}"},
        )

    @get("/", operation_id="list_subscriptions", guards=[admins_only])
    async def list_all(self, request: Caller, services: Deps) -> list[SubscriptionOut]:
        """The subscriptions covering only units the caller administers, each with its lag and last error."""
        mine = [s for s in await services.subscriptions.all() if manages(request.user, s)]
        return [msgspec.convert((await view(services, s)).out(), SubscriptionOut) for s in mine]

    @get("/{subscription_id:uuid}", operation_id="get_subscription", guards=[admins_only])
    async def get_one(self, subscription_id: FromPath[UUID], request: Caller, services: Deps) -> SubscriptionOut:
        """The subscription, its lag, counts and last error."""
        sub = await subscription_for(services, request.user, subscription_id)
        return msgspec.convert((await view(services, sub)).out(), SubscriptionOut)

    @patch("/{subscription_id:uuid}", operation_id="change_subscription", guards=[admins_only])
    async def change(
        self, subscription_id: FromPath[UUID], data: JSONBody[SubscriptionPatch], request: Caller, services: Deps
    ) -> SubscriptionOut:
        """Change the name, address, profile, kinds or units (for changes from now on)."""
        sub = await subscription_for(services, request.user, subscription_id)
        changed = await change_subscription(services, request.user, sub, msgspec.to_builtins(data))
        return msgspec.convert(changed.out(), SubscriptionOut)

    @post("/{subscription_id:uuid}/pause", operation_id="pause_subscription", guards=[admins_only], status_code=200)
    async def pause(self, subscription_id: FromPath[UUID], request: Caller, services: Deps) -> SubscriptionOut:
        """Stop sending (changes keep being collected for it; nothing is lost)."""
        sub = await subscription_for(services, request.user, subscription_id)
        await services.subscriptions.pause(sub.id, f"Paused by {request.user.account.login}.")
        paused = await subscription_for(services, request.user, sub.id)
        return msgspec.convert((await view(services, paused)).out(), SubscriptionOut)

    @post("/{subscription_id:uuid}/resume", operation_id="resume_subscription", guards=[admins_only], status_code=200)
    async def resume(self, subscription_id: FromPath[UUID], request: Caller, services: Deps) -> SubscriptionOut:
        """Send again: what waited goes now. The subscription acts for the resuming administrator from
        now on (one whose account was disabled stops its subscriptions until another resumes them)."""
        sub = await subscription_for(services, request.user, subscription_id)
        resumed = await services.subscriptions.resume(sub.id, by=request.user.account.id)
        if resumed is None:
            raise Problem(404, "subscription_not_found", "There is no subscription with this id that you manage.")
        return msgspec.convert((await view(services, resumed)).out(), SubscriptionOut)

    @post(
        "/{subscription_id:uuid}/secret",
        operation_id="rotate_subscription_secret",
        guards=[admins_only],
        status_code=200,
    )
    async def rotate(self, subscription_id: FromPath[UUID], request: Caller, services: Deps) -> SubscriptionOut:
        """A new signing secret (shown only now). Deliveries carry both signatures for
        `webhook_secret_overlap_hours`, so the receiver can switch without losing any."""
        sub = await subscription_for(services, request.user, subscription_id)
        return msgspec.convert((await rotate_secret(services, sub)).out(), SubscriptionOut)

    @delete(
        "/{subscription_id:uuid}",
        operation_id="delete_subscription",
        guards=[admins_only],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def remove(self, subscription_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Stop and remove the subscription; its deliveries are no longer sent."""
        sub = await subscription_for(services, request.user, subscription_id)
        await services.subscriptions.delete(sub.id)

    @get("/{subscription_id:uuid}/dead-letters", operation_id="list_dead_letters", guards=[admins_only])
    async def dead_letters(
        self,
        subscription_id: FromPath[UUID],
        request: Caller,
        services: Deps,
        after: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> DeadLetterPage:
        """Deliveries given up on, oldest first, with why (pass `next` as `after` for the next page)."""
        sub = await subscription_for(services, request.user, subscription_id)
        rows = await services.subscriptions.dead_letters(sub.id, after=after, limit=limit)
        items = [msgspec.convert(r, DeadLetterOut, from_attributes=True) for r in rows]
        return DeadLetterPage(items=items, next=rows[-1].version if len(rows) == limit else None)

    @post(
        "/{subscription_id:uuid}/dead-letters/replay",
        operation_id="replay_dead_letters",
        guards=[admins_only],
        status_code=200,
    )
    async def replay(
        self, subscription_id: FromPath[UUID], data: JSONBody[ReplayIn], request: Caller, services: Deps
    ) -> ReplayOut:
        """Send dead deliveries again, under their own ids (a receiver that took one already sees the
        same `webhook-id` and can skip it)."""
        sub = await subscription_for(services, request.user, subscription_id)
        return ReplayOut(replayed=await services.subscriptions.replay(sub.id, data.ids))
