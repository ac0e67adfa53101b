"""The pages a person opens in a browser: a front page saying what this is, and the API documentation,
served whole from the package (the province's intranet has no internet, so nothing comes from a CDN).

Swagger UI's files come from the pinned ``swagger-ui-py`` package and are served under
``/schema/assets/``; its page is ``/schema`` (also ``/schema/swagger``), the document
``/schema/openapi.json``.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS = "/schema/assets"
_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png")
SWAGGER_STATIC = Path(str(files("swagger_ui") / "static"))  # the files only; its Python is not used


def swagger_plugin() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
    )


def assets_router() -> Router:
    """Swagger UI's files, cached for a day (they change only with the pinned package)."""
    missing = [name for name in _FILES if not (SWAGGER_STATIC / name).is_file()]
    if missing:
        raise RuntimeError(f"swagger-ui-py lacks {', '.join(missing)}: reinstall the warehouse's dependencies")
    return create_static_files_router(
        path=ASSETS,
        directories=[SWAGGER_STATIC],
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=86400, public=True),
        name="docs-assets",
    )


def front_page(title: str, links: list[tuple[str, str, str]]) -> str:
    items = "\n".join(
        f'      <li><a href="{escape(href)}">{escape(label)}</a> — {escape(text)}</li>' for href, label, text in links
    )
    return f"""<!doctype html>
<html lang="vi">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{escape(title)}</title>
    <link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
    <style>
      body {{ font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem;
             line-height: 1.5; color: #1b1b1b; }}
      h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }}
      p.en {{ color: #555; margin-top: 0; }}
      li {{ margin: .4rem 0; }}
    </style>
  </head>
  <body>
    <h1>{escape(title)}</h1>
    <p>Kho dữ liệu hồ sơ số hóa và kết quả giải quyết thủ tục hành chính của tỉnh: các đơn vị tải bản
    quét lên qua API, hệ thống kiểm tra theo chuẩn số hóa, nhận dạng chữ (OCR) và cho phép tra cứu, tái sử
    dụng kết quả còn hiệu lực.</p>
    <p class="en">The province's warehouse of digitized administrative-procedure dossiers and results.</p>
    <ul>
{items}
    </ul>
  </body>
</html>
"""


FRONT_LINKS = [
    ("/console", "Bảng điều khiển / Console", "đăng nhập để số hóa, tra cứu, xem tiến độ và quản trị tài khoản"),
    ("/schema", "Tài liệu API / API documentation", "các thao tác, tham số và mã lỗi (Swagger UI, không cần Internet)"),
    ("/schema/openapi.json", "OpenAPI (JSON)", "tài liệu máy đọc được, để sinh mã client"),
    ("/health/ready", "Tình trạng / Health", "200 khi cơ sở dữ liệu, Redis và kho lưu trữ đều sẵn sàng"),
]


@get("/", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def front() -> Response[str]:
    return Response(front_page("Kho số hóa", FRONT_LINKS), media_type=MediaType.HTML)
