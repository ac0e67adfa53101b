"""Vietnamese full-text search: with and without diacritics, phrases, exact words first, fuzzy names,
filters, stable pages and a highlighted snippet."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, Subtree, auth

pytestmark = pytest.mark.asyncio(loop_scope="session")


def person(name: str, number: str) -> dict[str, Any]:
    return {"subject": {"name": name, "id_kind": "cccd", "id_number": number}}


async def search(api: Api, token: str, **params: Any) -> dict[str, Any]:
    r = await api.client.get("/api/v1/dossiers", params=params, headers=auth(token))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_words_as_written_rank_above_words_without_diacritics(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    typed_plain = await api.dossier(token, **person("Le Thi Ha", "020190024001"))
    written = await api.dossier(token, **person("Lê Thị Hà", "020190024002"))
    found = (await search(api, token, q="Lê Thị Hà"))["items"]
    assert [d["id"] for d in found] == [written["id"], typed_plain["id"]]
    assert "<b>Lê</b>" in found[0]["snippet"]
    plain = (await search(api, token, q="le thi ha"))["items"]
    assert {d["id"] for d in plain} == {written["id"], typed_plain["id"]}


async def test_phrases_fuzzy_names_and_filters(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    in_order = await api.dossier(
        token, title="Cấp giấy phép xây dựng nhà ở", **person("Nguyễn Thị Hường", "020190024003")
    )
    other_order = await api.dossier(
        token, title="Xây dựng lại hồ sơ cấp giấy phép", **person("Triệu Văn Lộc", "020190024004")
    )
    phrase = (await search(api, token, q='"giấy phép xây dựng"'))["items"]
    assert [d["id"] for d in phrase] == [in_order["id"]]
    both = (await search(api, token, q="giay phep xay dung"))["items"]
    assert {d["id"] for d in both} == {in_order["id"], other_order["id"]}
    assert "<b>" in both[0]["snippet"]

    # A mistyped name still finds the person when nothing matches the words themselves.
    typo = (await search(api, token, q="Nguyen Thi Huogn"))["items"]
    assert [d["id"] for d in typo] == [in_order["id"]]
    # Filters combine with the search.
    none = (await search(api, token, q="giay phep", subject_id="020190024004"))["items"]
    assert [d["id"] for d in none] == [other_order["id"]]


async def test_search_pages_are_stable_and_in_order_of_relevance(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    made = [await api.dossier(token, **person(f"Hoàng Văn Khánh {i}", f"0201900240{10 + i}")) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "hoang van khanh", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await search(api, token, **params)
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(d["id"] for d in made), "every match once across the pages"
    listing_cursor = (await search(api, token, limit=1))["next_cursor"]
    r = await api.client.get("/api/v1/dossiers", params={"q": "hoang", "cursor": listing_cursor}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")
