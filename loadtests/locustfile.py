"""The province at work, as Locust users: who calls what, how often, and with which files.

Run through ``make load`` (``loadtests/run.py``), which provisions the accounts, picks the shape and
judges the result. The reasoning behind every weight and think time is in ``loadtests/README.md``.
Environment: ``LOAD_SHAPE`` (before, communes, campaign, soak, capacity, smoke), ``LOAD_DURATION``
(seconds at full load), ``LOAD_ACCOUNTS`` (the credentials file the runner wrote), ``LOAD_REPORT_DIR``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment

from loadtests.pdfgen import scanned_pdf
from loadtests.shapes import PACE, plan_for

SHAPE = os.environ.get("LOAD_SHAPE", "smoke")
DURATION = float(os.environ.get("LOAD_DURATION", "60"))
CACHE = Path(__file__).resolve().parent / ".cache"

SURNAMES = ["Nguyễn", "Hoàng", "Lương", "Lý", "Vi", "Nông", "Hà", "Triệu", "Lục", "Đàm", "Chu", "Mã", "Lăng"]
GIVEN = ["Văn An", "Thị Hoa", "Văn Bình", "Thị Lan", "Đức Thắng", "Thị Mai", "Văn Sáng", "Thị Hương", "Minh Tú"]
PROCEDURES = ["1.002891", "1.001612", "1.000894", "2.000908", "1.003583", "1.004227"]

# Scans as the stations make them: (pages, dpi, weight). A 5-page A4 colour page at 200 dpi is ~3 MB.
SCAN_MIX = [(1, 200, 3), (3, 200, 3), (5, 200, 3), (8, 200, 1)]
_files: list[tuple[bytes, str, str, int]] = []  # (bytes, sha256, size label, weight)
_accounts: dict[str, list[dict[str, str]]] = {}
_next_account: dict[str, int] = {}


def _scan(pages: int, dpi: int) -> bytes:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"scan-{pages}p-{dpi}dpi.pdf"
    if not path.exists():
        path.write_bytes(scanned_pdf(pages=pages, dpi=dpi, seed=pages))
    return path.read_bytes()


# Dossiers the users of this process created, with when the API answered, until the feed's consumer
# reads them from the feed (only while a consumer runs in this process).
_awaited: dict[str, float] = {}
# Dossiers the consumer read before their creator had its answer (the feed can be that quick).
_early: dict[str, float] = {}
_feed_followed = False
FEED_POLL_SECONDS = float(os.environ.get("LOAD_FEED_POLL_SECONDS", "0.25"))
FEED_PATIENCE_SECONDS = 60.0  # a dossier not in the feed this long after it was made counts as missed

PROGRESS_EVERY = float(os.environ.get("LOAD_PROGRESS_SECONDS", "10"))


@events.init.add_listener
def _tell_progress(environment: Environment, **_: Any) -> None:
    """A line every PROGRESS_EVERY seconds while the run lasts (from the runner that holds the totals,
    never from a worker): elapsed time, users, requests per second, failures."""
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner) or environment.runner is None:
        return
    started = time.monotonic()

    def tell() -> None:
        while True:
            gevent.sleep(PROGRESS_EVERY)
            runner = environment.runner
            if runner is None:
                return
            total = environment.stats.total
            print(
                f"load: {time.monotonic() - started:4.0f} s, {runner.user_count} users, "
                f"{total.current_rps:.1f} requests/s, {total.num_requests} requests, {total.num_failures} failed",
                flush=True,
            )

    gevent.spawn(tell)


@events.init.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    for pages, dpi, weight in SCAN_MIX:
        data = _scan(pages, dpi)
        label = f"{len(data) / 1_000_000:.1f} MB"
        _files.append((data, hashlib.sha256(data).hexdigest(), label, weight))


def _credential(role: str, environment: Environment) -> dict[str, str]:
    """Accounts are dealt round-robin; with more users than accounts, sessions share an account.

    The credentials file is read when the first user starts, not when the process does: workers on
    other machines (deploy/compose.yaml's load profile) may start before the runner has written it."""
    path = os.environ.get("LOAD_ACCOUNTS")
    if not _accounts and path and Path(path).exists():
        _accounts.update(json.loads(Path(path).read_text()))
    pool = _accounts.get(role) or []
    if not pool:
        raise RuntimeError(f"no accounts for {role}: run through loadtests/run.py, which provisions them")
    runner = environment.runner
    index, count = (getattr(runner, "worker_index", 0), max(1, getattr(runner, "worker_count", 1)))
    n = _next_account.get(role, 0)
    _next_account[role] = n + 1
    return pool[(n * count + index) % len(pool)]


def _subject() -> dict[str, str]:
    return {
        "name": f"{random.choice(SURNAMES)} {random.choice(GIVEN)}",
        "id_kind": "cccd",
        "id_number": "020" + "".join(random.choices("0123456789", k=9)),
    }


class WarehouseUser(FastHttpUser):
    abstract = True
    role = ""
    think = (15.0, 35.0)
    network_timeout = 120.0
    connection_timeout = 30.0
    # A GET, PUT or DELETE whose kept-alive connection was found closed is sent once more, as RFC 9110
    # allows for idempotent requests (geventhttpclient never repeats a POST).
    max_retries = 1

    def wait_time(self) -> float:
        return random.uniform(*self.think) * PACE.get(SHAPE, 1.0)

    def on_start(self) -> None:
        self.credential = _credential(self.role, self.environment)
        self.mine: list[str] = []
        self.subjects: list[str] = []
        self.auth: dict[str, str] = {}
        self.sign_in()

    def sign_in(self) -> None:
        with self.client.post(
            "/api/v1/auth/login",
            json={"login": self.credential["login"], "password": self.credential["password"]},
            name="POST /auth/login",
            catch_response=True,
        ) as r:
            if r.status_code == 200:
                self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
            else:
                r.failure(f"login {self.credential['login']}: {r.status_code}")

    def call(self, method: str, path: str, name: str, **kwargs: Any) -> Any:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        r = self.client.request(method, path, name=name, headers=headers, **kwargs)
        if r.status_code == 401:  # the token expired during a long run
            self.sign_in()
        return r

    # -- the web console: the same people, some of the time in a browser ----------------------------

    def console_page(self, path: str, name: str) -> None:
        """A console page, signed in to the console on first use (its form, with its CSRF token)."""
        if not getattr(self, "console_signed_in", False):
            self.client.get("/console/sign-in", name="PAGE /console/sign-in")
            token = next((c.value for c in self.client.cookiejar if c.name == "kho_csrf"), "")
            with self.client.post(
                "/console/sign-in",
                data={"login": self.credential["login"], "password": self.credential["password"], "_csrf_token": token},
                name="POST /console/sign-in",
                allow_redirects=False,
                catch_response=True,
            ) as r:
                if r.status_code != 303:
                    r.failure(f"console sign-in {self.credential['login']}: {r.status_code}")
                    return
            self.console_signed_in = True
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True) as r:
            if r.status_code == 303:  # the sign-in ended (a long run): sign in again next time
                self.console_signed_in = False
                r.failure("console sign-in ended")
            elif r.status_code != 200:
                r.failure(f"{r.status_code}")

    def console_list(self) -> None:
        self.console_page("/console/dossiers", "PAGE /console/dossiers")

    def console_dossier(self) -> None:
        if self.mine:
            self.console_page(f"/console/dossiers/{random.choice(self.mine)}", "PAGE /console/dossiers/{id}")
        else:
            self.console_list()

    def console_search(self) -> None:
        self.console_page(f"/console/dossiers?q={quote(random.choice(GIVEN))}", "PAGE /console/dossiers (search)")

    # -- what people do ------------------------------------------------------------------------

    def create_dossier(self) -> str | None:
        subject = _subject()
        r = self.call(
            "POST",
            "/api/v1/dossiers",
            "POST /dossiers",
            json={
                "procedure_code": random.choice(PROCEDURES),
                "subject": subject,
                "title": "Số hóa hồ sơ tồn đọng",
                "result": {
                    "number": f"{random.randint(1, 9999)}/GCN",
                    "issued_on": "2022-06-01",
                    "issuer": "UBND",
                    "valid_until": "2030-12-31",
                },
            },
        )
        if r.status_code != 201:
            return None
        self.subjects = ([*self.subjects, subject["id_number"]])[-20:]
        dossier_id: str = r.json()["id"]
        if _feed_followed:  # the feed's consumer in this process waits for it (unless it has it already)
            _awaited[dossier_id] = time.time()
        self.mine = ([*self.mine, dossier_id])[-50:]
        return dossier_id

    def digitize(self) -> None:
        """One dossier: create it, upload its scans, wait until the warehouse has checked them."""
        dossier_id = self.create_dossier()
        if dossier_id is None:
            return
        started = time.monotonic()
        file_ids = []
        for _ in range(random.choices([1, 2, 3], weights=[5, 3, 2])[0]):
            data, digest, label, _w = random.choices(_files, weights=[f[3] for f in _files])[0]
            r = self.call(
                "POST",
                f"/api/v1/dossiers/{dossier_id}/files",
                f"POST /files ({label})",
                data=data,
                headers={
                    "Content-Type": "application/pdf",
                    "X-File-Kind": "component",
                    "X-Filename": quote("Bản scan hồ sơ.pdf"),
                    "X-Content-SHA256": digest,
                },
            )
            if r.status_code == 201:
                file_ids.append(r.json()["id"])
        # Wait as a station's software does: one look at the whole dossier at a time, not one per file;
        # soon after the upload (a quarter of a second, then half again each time), then every 3 s, so a
        # quick pipeline is timed to within its own speed and a slow one costs few requests.
        waiting = set(file_ids)
        deadline = time.monotonic() + 300
        pause = 0.25
        while waiting and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(3.0, pause * 1.5)
            r = self.call("GET", f"/api/v1/dossiers/{dossier_id}", "GET /dossiers/{id} (wait for checks)")
            if r.status_code == 200:
                waiting -= {f["id"] for f in r.json()["files"] if f["state"] != "processing"}
        if file_ids:
            self.environment.events.request.fire(
                request_type="PIPELINE",
                name="upload to ready",
                response_time=(time.monotonic() - started) * 1000,
                response_length=0,
                exception=RuntimeError("not ready within 300 s") if waiting else None,
                context={},
            )

    def list_unit(self) -> None:
        self.call("GET", "/api/v1/dossiers?limit=20", "GET /dossiers (list)")

    def search(self) -> None:
        self.call("GET", f"/api/v1/dossiers?q={quote(random.choice(GIVEN))}&limit=20", "GET /dossiers (search)")

    def reuse_lookup(self) -> None:
        subject = random.choice(self.subjects) if self.subjects else "020" + "0" * 9
        self.call("GET", f"/api/v1/dossiers?subject_id={subject}&valid=true", "GET /dossiers (reuse)")

    def open_dossier(self) -> None:
        if self.mine:
            self.call("GET", f"/api/v1/dossiers/{random.choice(self.mine)}", "GET /dossiers/{id}")
        else:
            self.list_unit()


class CommuneOperator(WarehouseUser):
    """An operator at a commune's scanning station during a working session."""

    role = "commune_operator"
    weight = 600
    think = (15.0, 35.0)

    def on_start(self) -> None:
        super().on_start()
        if SHAPE == "smoke":
            self.digitize()  # a smoke run of a few seconds must go through the upload path every time

    @task(1)
    def digitize_task(self) -> None:
        self.digitize()

    @task(4)
    def list_task(self) -> None:
        self.list_unit()

    @task(2)
    def search_task(self) -> None:
        self.search()

    @task(2)
    def open_task(self) -> None:
        self.open_dossier()

    @task(1)
    def reuse_task(self) -> None:
        self.reuse_lookup()

    @task(1)
    def console_list_task(self) -> None:
        self.console_list()

    @task(1)
    def console_dossier_task(self) -> None:
        self.console_dossier()


class DistrictOperator(CommuneOperator):
    """District one-stop desks: more dossiers per operator than a commune."""

    role = "district_operator"
    weight = 22
    think = (10.0, 25.0)


class DepartmentOperator(CommuneOperator):
    role = "department_operator"
    weight = 40
    think = (10.0, 25.0)


class Official(WarehouseUser):
    """A district official: finds records to reuse, opens and downloads them."""

    role = "official"
    weight = 11
    think = (10.0, 30.0)

    @task(4)
    def search_task(self) -> None:
        self.search()

    @task(2)
    def console_search_task(self) -> None:
        self.console_search()

    @task(3)
    def reuse_task(self) -> None:
        self.call(
            "GET", f"/api/v1/dossiers?valid=true&limit=20&q={quote(random.choice(SURNAMES))}", "GET /dossiers (reuse)"
        )

    @task(2)
    def browse_and_download(self) -> None:
        r = self.call("GET", "/api/v1/dossiers?limit=20", "GET /dossiers (list)")
        if r.status_code != 200 or not r.json()["items"]:
            return
        dossier = self.call("GET", f"/api/v1/dossiers/{random.choice(r.json()['items'])['id']}", "GET /dossiers/{id}")
        files = dossier.json().get("files", []) if dossier.status_code == 200 else []
        ready = [f for f in files if f["state"] == "ready"]
        if ready:
            self.call("GET", f"/api/v1/files/{random.choice(ready)['id']}/content", "GET /files/{id}/content")


class Admin(WarehouseUser):
    """The province admin: provisioning now and then, reading the audit trail."""

    role = "admin"
    weight = 1
    fixed_count = 1
    think = (60.0, 120.0)

    @task(1)
    def provision(self) -> None:
        district = random.choice([f"000.00.{n}.HXX" for n in range(21, 32)])
        self.call(
            "POST",
            "/api/v1/accounts/provision",
            "POST /accounts/provision",
            json={"parent_unit_code": district, "level": "commune", "per_unit": 3, "role": "operator"},
        )

    @task(2)
    def audit(self) -> None:
        self.call("GET", "/api/v1/audit?limit=50", "GET /audit")


# The starter catalogue's procedures (sample data), each with its result type KQ1.
RETURNED = ["1.001612", "1.001193", "1.000656", "1.003583", "2.000488", "2.001159"]
RESULT_SCAN = (1, 150)  # a result is one page


class OneStopSystem(WarehouseUser):
    """The province's one-stop system pushing what its desks returned. The province returns about 1,100
    results a day, most in the bursts before noon and before closing (some 450 an hour then); this user
    pushes a batch of 5 to 30 returns every half minute or so, about 2,000 an hour, a day's returns in
    half an hour, so that the busy hour is covered with room. A third come without the electronic result
    (owed); the others carry it, and its bytes follow through the upload session the push opened. Signs
    in with its API key, as an integration does."""

    role = "one_stop"
    weight = 1
    fixed_count = 1
    think = (20.0, 40.0)

    def on_start(self) -> None:
        self.credential = _credential(self.role, self.environment)
        self.auth = {"X-API-Key": self.credential["key"]}
        self.mine, self.subjects = [], []
        self.units = [c["unit_code"] for c in _accounts.get("commune_operator", [])] or [self.credential["unit_code"]]
        self.sequence = random.randint(5000, 8999)
        self.result = _scan(*RESULT_SCAN)
        self.result_sha = hashlib.sha256(self.result).hexdigest()
        self.result_label = f"{len(self.result) / 1_000_000:.1f} MB"

    def sign_in(self) -> None:  # a key does not expire
        return

    def _return(self) -> dict[str, Any]:
        self.sequence = self.sequence + 1 if self.sequence < 9999 else 5000
        received = time.localtime(time.time() - 86400 * random.randint(3, 40))
        day = time.strftime("%Y-%m-%d", received)
        returned = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400 * random.randint(0, 2)))
        unit = random.choice(self.units)
        item: dict[str, Any] = {
            "dossier_code": f"{unit}-{time.strftime('%y%m%d', received)}-{self.sequence:04d}",
            "procedure_code": random.choice(RETURNED),
            "unit_code": unit,
            "received_on": day,
            "returned_on": returned,
            "subject": _subject(),
            "result": {"number": f"{random.randint(1, 9999)}/KQ", "type_code": "KQ1", "issuer": "UBND"},
        }
        if random.random() >= 1 / 3:
            item["result"]["file"] = {"filename": "ket-qua.pdf", "size": len(self.result), "sha256": self.result_sha}
        return item

    @task
    def push_returns(self) -> None:
        batch = [self._return() for _ in range(random.randint(5, 30))]
        started = time.monotonic()
        with self.client.post(
            "/api/v1/intake/returns", json=batch, headers=self.auth, name="POST /intake/returns", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return
            items = r.json()["items"]
            refused = [i for i in items if i["outcome"] == "refused" or i.get("upload_problem")]
            if refused:
                r.failure(f"{len(refused)} of {len(items)} refused: {refused[0].get('problem') or refused[0]}")
        self.environment.events.request.fire(
            request_type="INTAKE",
            name="intake per item",
            response_time=(time.monotonic() - started) * 1000 / len(batch),
            response_length=0,
            exception=None,
            context={},
        )
        for item in items:
            upload = item.get("upload")
            if not upload or not upload.get("missing"):
                continue
            label = f"PUT /uploads/{{id}}/parts (intake, {self.result_label})"
            self.paced("PUT", f"/api/v1/uploads/{upload['id']}/parts/1", label, data=self.result,
                       headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            self.paced("POST", f"/api/v1/uploads/{upload['id']}/complete", "POST /uploads/{id}/complete (intake)")

    def paced(self, method: str, path: str, name: str, **kwargs: Any) -> None:
        """As an integration sends a batch's files: one after another, a tenth of a second apart, and a
        429 waited out for as long as Retry-After says (the account's fair share is 20 requests/s)."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        for _ in range(5):
            with self.client.request(method, path, name=name, headers=headers, catch_response=True, **kwargs) as r:
                if r.status_code == 429:
                    r.success()
                    gevent.sleep(float(r.headers.get("Retry-After", "1")))
                    continue
                if r.status_code >= 400:
                    r.failure(f"{r.status_code}: {r.text[:200]}")
            break
        gevent.sleep(0.1)


class FeedConsumer(WarehouseUser):
    """The national portal's side of the warehouse: follows the change feed while everyone works, as an
    integration does, and checks it. Every dossier the users of this process create must arrive, once
    (a request "feed lag": from the API's answer to the change being read from the feed); every
    record's versions must only grow (a change out of order is a failure); a dossier not in the feed
    a minute after it was made is a failure."""

    role = "admin"
    weight = 1
    fixed_count = 1

    def wait_time(self) -> float:
        return FEED_POLL_SECONDS

    def on_start(self) -> None:
        global _feed_followed
        super().on_start()
        self.versions: dict[str, int] = {}
        r = self.call("GET", "/api/v1/feed/end", "GET /feed/end")
        self.cursor = r.json()["cursor"] if r.status_code == 200 else ""
        _feed_followed = True

    def _report(self, lag_ms: float, problem: str | None = None) -> None:
        self.environment.events.request.fire(
            request_type="FEED",
            name="feed lag",
            response_time=lag_ms,
            response_length=0,
            exception=RuntimeError(problem) if problem else None,
            context={},
        )

    @task
    def follow(self) -> None:
        for _ in range(20):  # pages a round, so that a backlog is read through without waiting
            query = f"?limit=1000&after={self.cursor}" if self.cursor else "?limit=1000"
            r = self.call("GET", "/api/v1/feed" + query, "GET /feed")
            if r.status_code != 200:
                return
            page = r.json()
            seen = time.time()
            for change in page["items"]:
                before = self.versions.get(change["id"], 0)
                if change["version"] <= before:
                    self._report(0, f"{change['kind']} of {change['id']}: version {change['version']} after {before}")
                self.versions[change["id"]] = change["version"]
                if change["kind"] != "dossier.created":
                    continue
                made = _awaited.pop(change["id"], None)
                if made is not None:
                    self._report(max(0.0, (seen - made) * 1000))
                else:
                    _early[change["id"]] = seen
            self.cursor = page["next"]
            if not page["more"]:
                break
        for dossier_id in [d for d in _awaited if d in _early]:  # read before its creator had the answer
            _awaited.pop(dossier_id)
            _early.pop(dossier_id)
            self._report(0.0)
        for dossier_id in [d for d, at in _early.items() if time.time() - at > 600]:
            del _early[dossier_id]  # another process's dossier, or one made before this run
        overdue = [d for d, made in _awaited.items() if time.time() - made > FEED_PATIENCE_SECONDS]
        for dossier_id in overdue:
            _awaited.pop(dossier_id, None)
            self._report(FEED_PATIENCE_SECONDS * 1000, f"dossier {dossier_id} not in the feed after a minute")
        if len(self.versions) > 200_000:  # a long soak: forget the oldest records' versions
            for key in list(self.versions)[:100_000]:
                del self.versions[key]


USER_CLASSES = {
    c.__name__: c
    for c in (CommuneOperator, DistrictOperator, DepartmentOperator, Official, Admin, OneStopSystem, FeedConsumer)
}


class WarehouseShape(LoadTestShape):
    """The shape named by LOAD_SHAPE (see loadtests/shapes.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan = plan_for(SHAPE, DURATION, os.environ.get("LOAD_REPORT_DIR"))

    def tick(self) -> tuple[int, float, list[type[Any]]] | None:
        step = self.plan.step(self.get_run_time(), self.runner)
        if step is None:
            return None
        users, rate, classes = step
        return users, rate, [USER_CLASSES[name] for name in classes]
