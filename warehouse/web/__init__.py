"""The web console: server-rendered pages in Vietnamese (English on request) for the people who use the
warehouse every day, served by the same app on the same use cases as the API.

- ``/console/...``: the pages (warehouse/web/pages.py), signed in with an HttpOnly cookie;
- ``/console/api/v1/...``: the API's own upload, file and report routes, for the pages' scripts and
  downloads, with the same cookie instead of a bearer token;
- ``/console/static/...``: the stylesheet, the upload script and htmx, shipped with the package.

Every write under /console carries a CSRF token (Litestar's CSRF middleware, double-submit cookie);
the API under /api never reads the console's cookie, so it needs none.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from storage import Settings
from warehouse.api.files import FilesController
from warehouse.api.reports import ReportsController
from warehouse.api.uploads import UploadsController
from warehouse.web.pages import ConsolePages
from warehouse.web.session import PREFIX, PUBLIC, console_auth

HERE = Path(__file__).parent
CONSOLE_PATHS = f"^{PREFIX}(/.*)?$"  # not for the API's bearer sign-in: the console signs its own in


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def csrf(settings: Settings) -> DefineMiddleware:
    """The console's CSRF check (a double-submit token, HMAC-signed with the app's secret), on the
    console's routers only: the API is signed in by header and needs none."""
    config = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="kho_csrf",
        cookie_path=PREFIX,
        cookie_secure=settings.console_cookie_secure == "always",
        cookie_samesite="lax",
        header_name="x-csrftoken",
    )
    return DefineMiddleware(CSRFMiddleware, config=config)


def console_handlers(settings: Settings) -> list[ControllerRouterHandler]:
    pages = Router(path="/", route_handlers=[ConsolePages], middleware=[csrf(settings), console_auth])
    api = Router(
        path=PREFIX,
        route_handlers=[UploadsController, FilesController, ReportsController],
        middleware=[csrf(settings), console_auth],
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{PREFIX}/static",
        directories=[HERE / "static"],
        opt={PUBLIC: True},
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600, public=True),
        name="console-static",
    )
    return [pages, api, static]
