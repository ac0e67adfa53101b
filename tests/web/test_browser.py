"""The console in a real browser (the machine's Chromium, driven by Playwright), as its people use it.

An operator signs in for the first time, changes the one-time password, creates a dossier and drops
two scans on it, one of which is rejected with its reason; an official finds the dossier without
diacritics and opens the PDF; an administrator provisions a district and downloads the credentials; a
leader reads the dashboard; another commune's operator gets a 404 for the dossier's page. Each page
is photographed into ``$WAREHOUSE_DATA_DIR/screenshots`` (the README's pictures come from there).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import PASSWORD, Api, LiveServer, Subtree
from tests.pdfs import javascript_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = os.environ.get("WAREHOUSE_CHROMIUM", "/usr/bin/chromium")
# As root, on a closed network: no sandbox, nothing fetched in the background.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PART = 5 * 1024 * 1024  # the smallest part S3 takes: a 5.5 MB scan goes in two
SHOTS = Path(os.environ.get("WAREHOUSE_DATA_DIR", ".data")) / "screenshots"


async def photograph(page: Any, name: str, *, full_page: bool = False) -> None:
    """A screenshot for the README; Chromium now and then cannot take one while the page repaints
    (its file list refreshes every 3 s), so it is tried again, and a picture missed fails nothing."""
    from playwright.async_api import Error

    for _ in range(3):
        try:
            await page.screenshot(path=str(SHOTS / name), full_page=full_page, quality=70)
            return
        except Error:
            await page.wait_for_timeout(300)


@pytest.fixture
async def chromium() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make install-dev` installs Debian's chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def test_the_console_as_its_people_use_it(api: Api, tree: Subtree, chromium: object) -> None:
    from playwright.async_api import Browser, expect

    assert isinstance(chromium, Browser)
    SHOTS.mkdir(parents=True, exist_ok=True)
    operator_login, _ = await api.account("operator", tree.commune(1), change_required=True)
    stranger_login, _ = await api.account("operator", tree.commune(2))
    official_login, _ = await api.account("viewer", tree.district)
    admin_login, _ = await api.account("unit_admin", tree.district)
    procedure = await api.db.pool.fetchval("SELECT procedure_code FROM procedure_versions ORDER BY 1 LIMIT 1")
    good = scanned_pdf(pages=1, dpi=200, seed=401)
    scripted = javascript_pdf()  # a PDF that runs a script when opened: the standard refuses it

    with LiveServer(WAREHOUSE_UPLOAD_PART_BYTES=str(PART)) as server:

        async def person(
            login: str, password: str = PASSWORD, *, shot: str | None = None, keyboard: bool = False
        ) -> object:
            context = await chromium.new_context(base_url=server.url, viewport={"width": 1366, "height": 768})
            page = await context.new_page()
            await page.goto("/console")
            await expect(page).to_have_url(f"{server.url}/console/sign-in?next=/console")
            await expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
            if shot:
                await photograph(page, shot)
            if keyboard:  # the login field has the focus; Tab to the password, Enter to send
                await page.keyboard.type(login)
                await page.keyboard.press("Tab")
                await page.keyboard.type(password)
                await page.keyboard.press("Enter")
                return page
            await page.get_by_label("Tên đăng nhập").fill(login)
            await page.get_by_label("Mật khẩu").fill(password)
            await page.get_by_role("button", name="Đăng nhập").click()
            return page

        async def every_control_is_labelled(page: Any) -> None:
            unlabelled = await page.eval_on_selector_all(
                "input:not([type=hidden]), select, textarea",
                "els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
                ".map(e => e.name || e.id)",
            )
            assert unlabelled == [], f"{page.url}: controls without a label: {unlabelled}"

        # An operator, the first time: the password first, then a dossier and two scans.
        page = await person(operator_login, shot="sign-in.jpg")
        await expect(page.get_by_role("heading", name="Đổi mật khẩu")).to_be_visible()
        await page.get_by_label("Mật khẩu hiện tại").fill(PASSWORD)
        await page.get_by_label("Mật khẩu mới (ít nhất 10 ký tự)").fill("mat-khau-moi-cua-xa-9")
        await photograph(page, "password.jpg")
        await page.get_by_role("button", name="Đổi mật khẩu").click()
        await expect(page.get_by_role("heading", name="Hồ sơ", exact=True)).to_be_visible()
        await page.get_by_role("link", name="Tạo hồ sơ").click()
        await page.get_by_label("Thủ tục").select_option(procedure)
        await page.get_by_label("Họ và tên").fill("Lương Văn Chiến")
        await page.get_by_label("Số CCCD/CMND/hộ chiếu").fill("020190004321")
        await page.get_by_label("Trích yếu").fill("Giấy chứng nhận quyền sử dụng đất")
        await every_control_is_labelled(page)
        await photograph(page, "dossier-new.jpg")
        await page.get_by_role("button", name="Tạo", exact=True).click()
        await expect(page.get_by_text("Lương Văn Chiến (CCCD 020190004321)")).to_be_visible()
        dossier_url = page.url
        await page.locator("#pick").set_input_files(
            [
                {"name": "to-khai.pdf", "mimeType": "application/pdf", "buffer": good},
                {"name": "giay-to-co-ma.pdf", "mimeType": "application/pdf", "buffer": scripted},
            ]
        )
        await expect(page.locator("#progress li.sent")).to_have_count(2, timeout=30_000)
        assert await api.run_worker() >= 2
        rejected = page.locator("li.file.rejected")
        await expect(rejected).to_have_count(1, timeout=15_000)  # the page asks again every 3 s
        await expect(rejected).to_contain_text("giay-to-co-ma.pdf")
        await expect(rejected).to_contain_text("JavaScript")  # the reason, in Vietnamese
        await expect(rejected).to_contain_text("không được lưu làm bản số hóa")
        await expect(rejected.get_by_role("link", name="Xem")).to_have_count(0)  # not opened in the browser
        await expect(page.locator("li.file.ready")).to_contain_text("to-khai.pdf")
        await photograph(page, "dossier.jpg", full_page=True)

        # A flaky commune link: the connection drops while a part is on its way; the page waits and
        # sends that part again, and the file arrives whole.
        dropped: list[str] = []

        async def flaky(route: Any) -> None:
            if not dropped and route.request.method == "PUT" and route.request.url.endswith("/parts/2"):
                dropped.append(route.request.url)
                await route.abort("connectionreset")
            else:
                await route.continue_()

        await page.route("**/console/api/v1/uploads/*/parts/*", flaky)
        big = scanned_pdf(pages=1, dpi=200, seed=403)
        big += b"%" * (PART + PART // 10 - len(big))  # a comment after the end: readers ignore it
        await page.locator("#pick").set_input_files(
            [{"name": "ho-so-day.pdf", "mimeType": "application/pdf", "buffer": big}]
        )
        await expect(page.locator("#progress li.sent")).to_have_count(3, timeout=30_000)
        assert dropped, "the second part's first try was cut off"
        stored = await api.db.pool.fetchval("SELECT sha256 FROM files WHERE name = 'ho-so-day.pdf'")
        assert stored == hashlib.sha256(big).hexdigest()
        await page.context.close()

        # An official of the district finds it without diacritics and opens the scan.
        page = await person(official_login)
        await page.get_by_role("link", name="Hồ sơ", exact=True).click()
        await page.get_by_label("Tìm kiếm").fill("luong van chien")
        await page.get_by_role("button", name="Tìm kiếm").first.click()
        await photograph(page, "search.jpg")
        await page.get_by_role("link", name=tree.commune(1), exact=False).first.click()
        await expect(page).to_have_url(dossier_url)
        view = page.locator("li.file.ready").get_by_role("link", name="Xem")
        assert await view.get_attribute("target") == "_blank"  # the browser's own PDF viewer, in a new tab
        got = await page.request.get(await view.get_attribute("href") or "")  # with the page's sign-in
        assert got.status == 200 and got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"].startswith("inline") and (await got.body()) == good
        await page.context.close()

        # A leader reads the dashboard.
        page = await person(official_login)
        await expect(page.get_by_role("heading", name="Tiến độ")).to_be_visible()
        await expect(page.get_by_role("rowheader", name="Cấp xã")).to_be_visible()
        await expect(page.get_by_role("link", name="Tải bảng tính (XLSX)")).to_be_visible()
        await photograph(page, "dashboard.jpg", full_page=True)
        await page.context.close()

        # An administrator provisions the district's communes and downloads the credentials.
        page = await person(admin_login)
        await expect(page.get_by_role("heading", name="Tài khoản", exact=True)).to_be_visible()
        await page.get_by_label("Mã đơn vị cha (huyện)").fill(tree.district)
        await page.get_by_label("Số tài khoản mỗi đơn vị").fill("1")
        await photograph(page, "accounts.jpg")
        await every_control_is_labelled(page)
        async with page.expect_download() as download:
            await page.get_by_role("button", name="Tạo và tải tệp mật khẩu").click()
        saved = await (await download.value).path()
        rows = [r for r in csv.reader(io.StringIO(Path(saved).read_text(encoding="utf-8-sig"))) if r][1:]
        assert sorted(r[2] for r in rows) == sorted(tree.communes)
        await page.context.close()

        # Another commune's operator, signing in with the keyboard alone: the dossier's page is not there
        # for them.
        page = await person(stranger_login, keyboard=True)
        await expect(page.get_by_role("heading", name="Hồ sơ", exact=True)).to_be_visible()
        response = await page.goto(dossier_url)
        assert response is not None and response.status == 404
        await expect(page.get_by_role("heading", name="Không tìm thấy")).to_be_visible()
        await page.context.close()

        # On a phone: the public check a citizen opens from a QR, and the sign-in, fit a 360 px screen.
        phone = await chromium.new_context(base_url=server.url, viewport={"width": 360, "height": 740})
        page = await phone.new_page()
        for path in ("/verify/020190004321-KQ1-00000001", "/console/sign-in"):
            await page.goto(path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} is {width} px wide on a 360 px screen"
        await phone.close()
