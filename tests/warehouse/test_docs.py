"""The pages a browser opens work on an intranet without internet: everything they load is served here."""

from __future__ import annotations

import re

import pytest

from tests.factories import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOADED = re.compile(r"""<(?:script|link)\b[^>]*?(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/", "/schema", "/schema/swagger"])
async def test_each_page_loads_only_files_the_warehouse_serves(api: Api, page: str) -> None:
    r = await api.client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    loaded = LOADED.findall(r.text)
    assert loaded, "the page loads its script, style and icon"
    for url in loaded:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = await api.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
        assert "max-age=86400" in asset.headers.get("cache-control", "")


async def test_the_front_page_says_what_this_is_and_links_the_docs_and_health(api: Api) -> None:
    page = (await api.client.get("/")).text
    assert "Kho số hóa" in page
    for link in ('href="/schema"', 'href="/schema/openapi.json"', 'href="/health/ready"'):
        assert link in page
    docs = (await api.client.get("/schema")).text
    assert "SwaggerUIBundle" in docs and "/schema/assets/swagger-ui-bundle.js" in docs
