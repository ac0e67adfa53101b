"""The one place that assembles the HTTP application."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from storage import Database, Queue, Settings, app_database_url, get_settings, object_store
from warehouse.api.accounts import AccountsController, ApiKeysController, AuditController
from warehouse.api.catalogue import ProceduresController
from warehouse.api.docs import assets_router, front, swagger_plugin
from warehouse.api.dossiers import DossiersController, ResultsController
from warehouse.api.feed import FeedController, SubscriptionsController
from warehouse.api.files import FilesController
from warehouse.api.health import HealthController
from warehouse.api.intake import IntakeController
from warehouse.api.legal import LegalController, VerifyController
from warehouse.api.pipeline import PipelineController
from warehouse.api.problems import declare_problems
from warehouse.api.reports import ReportsController
from warehouse.api.retention import KeepingController, PurgesController
from warehouse.api.session import SessionController
from warehouse.api.units import UnitsController
from warehouse.api.uploads import UploadsController
from warehouse.audit import audit_middleware
from warehouse.auth import PUBLIC_PATHS, AuthMiddleware
from warehouse.connections import close_after_unread_body
from warehouse.context import Services
from warehouse.errors import EXCEPTION_HANDLERS, Problem, answer_problems
from warehouse.fair_share import rate_headers
from warehouse.idempotency import idempotency_middleware
from warehouse.metrics import refresh_if_stale
from warehouse.web import CONSOLE_PATHS, console_handlers, template_config

log = logging.getLogger(__name__)


def resolve_secret(settings: Settings) -> Settings:
    """Settings with a signing key: the configured one, or one kept under the data folder."""
    if settings.secret_key:
        return settings
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


def _services(state: State) -> Services:
    services: Services = state.services
    return services


async def _rate_limit_headers(message: Message, scope: Scope) -> None:
    """RateLimit-* headers on every answer to a counted request."""
    state = scope.get("state", {}).get("ratelimit")
    if message["type"] == "http.response.start" and state is not None:
        headers = MutableScopeHeaders.from_message(message)
        for name, value in rate_headers(state).items():
            headers.setdefault(name, value)


class MetricsController(PrometheusController):
    """Prometheus' scrape; the pipeline's and queues' depth are read first when older than
    ``WAREHOUSE_METRICS_REFRESH_SECONDS``."""

    path = "/metrics"
    include_in_schema = False

    @get(include_in_schema=False)
    async def get(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[bytes]:
        token = services.settings.metrics_token
        if request.scope.get("raw_path", b"/metrics").split(b"?", 1)[0] != b"/metrics" or (
            token and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}")
        ):
            raise Problem(404, "not_found", "There is nothing at this address.")
        await refresh_if_stale(services.files, services.queue, services.settings.metrics_refresh_seconds)
        return await PrometheusController.get.fn(self)  # type: ignore[no-any-return]


def clean_paths(app: ASGIApp) -> ASGIApp:
    """Paths with empty, '.' or '..' segments are refused before anything reads them: a proxy may
    match such a path as one thing and pass it on as another."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            raw = scope.get("raw_path") or scope["path"].encode()
            segments = raw.split(b"?", 1)[0].decode("latin-1").split("/")[1:]
            if any(seg in ("", ".", "..") for seg in segments[:-1]) or segments[-1:] in (["."], [".."]):
                raise Problem(404, "not_found", "There is nothing at this address.")
        await app(scope, receive, send)

    return middleware


def create_app(settings: Settings | None = None) -> Litestar:
    settings = resolve_secret(settings or get_settings())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await Database.connect(
            app_database_url(settings), min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        objects = object_store(settings)
        queue = Queue.from_url(settings.redis_url)
        services = Services(settings=settings, db=db, objects=objects, queue=queue)
        services.start_watching()
        app.state.services = services
        try:
            yield
        finally:
            if services.watch is not None:
                await services.watch.stop()
            services.signing.close()
            await queue.close()
            await objects.aclose()
            await db.close()

    prometheus = PrometheusConfig(app_name="warehouse", prefix="warehouse", group_path=True, exclude=["^/metrics"])
    openapi = OpenAPIConfig(
        title="Kho số hóa",
        version="1.0.0",
        description="The province's warehouse of digitized administrative-procedure dossiers and results.",
        path="/schema",
        use_handler_docstrings=True,  # each operation's description is its handler's docstring
        render_plugins=[swagger_plugin()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            }
        ),
        security=[{"bearer": []}],
    )
    app = Litestar(
        route_handlers=[
            front,
            assets_router(),
            HealthController,
            PipelineController,
            ReportsController,
            UploadsController,
            SessionController,
            UnitsController,
            DossiersController,
            ResultsController,
            FilesController,
            ProceduresController,
            IntakeController,
            LegalController,
            VerifyController,
            FeedController,
            SubscriptionsController,
            KeepingController,
            PurgesController,
            AccountsController,
            ApiKeysController,
            AuditController,
            MetricsController,
            *console_handlers(settings),
        ],
        dependencies={"services": Provide(_services, sync_to_thread=False)},
        middleware=[
            audit_middleware,
            prometheus.middleware,
            answer_problems,
            clean_paths,
            DefineMiddleware(AuthMiddleware, exclude=[*PUBLIC_PATHS, CONSOLE_PATHS]),
            idempotency_middleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[_rate_limit_headers],
        openapi_config=openapi,
        template_config=template_config(),
        lifespan=[lifespan],
        request_max_body_size=1024 * 1024,  # JSON bodies; file uploads set their own limit
    )
    declare_problems(app.openapi_schema)  # built once here; /schema serves this same document
    app.asgi_handler = close_after_unread_body(app.asgi_handler)  # outside everything, 404s included
    return app
