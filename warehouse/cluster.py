"""The warehouse as a cluster on one machine, and the failover run that proves it loses nothing.

``warehouse cluster up``: Postgres and Redis as ``make run`` has them; the object store as SeaweedFS
with a master, three volume servers that keep every object on two of them (replication ``001``) and a
filer serving S3; the API in two processes sharing one port (the kernel spreads connections between
them, SO_REUSEPORT); two inspection workers. ``warehouse cluster failover`` starts it, uploads as the
communes do (dossiers and scans, each request with an idempotency key and retried as the station
client retries), kills one API process, one worker and one volume server in turn, brings the volume
server back with the data it had (stale), and then proves: every acknowledged upload downloads with
its SHA-256, none was recorded twice, every one was inspected, and the failures in each failover
window stayed within the stated budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from storage import Database, Files, Settings, drop_database
from warehouse.client.transport import still_answering
from warehouse.local_services import LocalServices, answers, s3_address, wait_until_answers, write_s3_identities

VOLUMES = 3
WORKERS = 2
API_PROCESSES = 2
# In the window after a kill, at most this share of requests may fail before their retry succeeds;
# after the window none may, and no acknowledged upload may be lost or doubled.
WINDOW_SECONDS = 10.0
WINDOW_BUDGET = 0.25


@dataclass
class Cluster:
    """``overrides``: settings of this cluster's own (its database, ports, bucket), given to every process."""

    base: Settings
    overrides: dict[str, Any] = field(default_factory=dict)
    settings: Settings = field(init=False)
    root: Path = field(init=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.settings = self.base.model_copy(update=self.overrides)
        self.root = Path(self.settings.data_dir).resolve() / "cluster"

    # ports next to the S3 port, as the single server's are
    def _port(self, offset: int) -> int:
        return s3_address(self.settings).port + offset

    def _env(self) -> dict[str, str]:
        own = {f"WAREHOUSE_{k.upper()}": str(v) for k, v in self.overrides.items()}
        return {**os.environ, **own, "WAREHOUSE_API_WORKERS": "1"}

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        log = (self.root / "logs" / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env or self._env()
        )
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "run" / f"{name}.pid").write_text(str(self.procs[name].pid))

    def _weed(self, name: str, args: list[str]) -> None:
        weed = LocalServices(self.settings)._weed_binary()
        self._start(name, [weed, *args])

    def start_volume(self, n: int) -> None:
        folder = self.root / f"volume{n}"
        folder.mkdir(parents=True, exist_ok=True)
        port = self._port(1210 + n)
        self._weed(
            f"volume{n}",
            ["volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={port}", f"-port.grpc={port + 10000}",
             f"-dir={folder}", f"-mserver=127.0.0.1:{self._port(1200)}", "-max=1000", "-rack=r1"],
        )  # fmt: skip

    def store_up(self) -> None:
        """SeaweedFS as a cluster: every object on two of three volume servers."""
        s = self.settings
        (self.root / "master").mkdir(parents=True, exist_ok=True)
        master = self._port(1200)
        self._weed(
            "master",
            ["master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={master}", f"-port.grpc={master + 10000}",
             f"-mdir={self.root / 'master'}", "-defaultReplication=001", "-volumeSizeLimitMB=64",
             "-telemetry=false"],
        )  # fmt: skip
        wait_until_answers(_address(master), 30, "the SeaweedFS master")
        for n in range(1, VOLUMES + 1):
            self.start_volume(n)
        identities = write_s3_identities(s, self.root / "s3-identities.json")
        filer = self._port(1220)
        s3 = s3_address(s).port
        self._weed(
            "filer",
            ["filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-port={filer}", f"-port.grpc={filer + 10000}",
             f"-master=127.0.0.1:{master}", "-s3", f"-s3.port={s3}", f"-s3.port.grpc={self._port(1221) + 10000}",
             f"-s3.config={identities}", "-s3.port.iceberg=0", f"-defaultStoreDir={self.root / 'filer'}"],
        )  # fmt: skip
        wait_until_answers(s3_address(s), 60, "the SeaweedFS S3 gateway")

    def up(self) -> None:
        if answers(s3_address(self.settings)):
            raise RuntimeError(
                f"something already answers on the S3 port {s3_address(self.settings).port}: stop the single "
                "local server first (warehouse services down) or choose another WAREHOUSE_S3_ENDPOINT"
            )
        services = LocalServices(self.settings)
        services._prepare()
        services._postgres_up()
        services._redis_up()
        self.store_up()
        for args in (["migrate"], ["seed"]):
            subprocess.run([sys.executable, "-m", "warehouse", *args], check=True, env=self._env(),
                           stdout=subprocess.DEVNULL)  # fmt: skip
        for n in range(1, API_PROCESSES + 1):
            self._start(f"api{n}", [sys.executable, "-m", "warehouse", "serve"])
        for n in range(1, WORKERS + 1):
            self._start(f"worker{n}", [sys.executable, "-m", "workers"])
        wait_until_answers(_address(self.settings.port), 60, "the API")

    def kill(self, name: str) -> None:
        """As a power cut would: the process and its children, at once."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def down(self, grace: float = 60) -> None:
        """SIGTERM to each (the API and workers finish what they hold), SIGKILL after ``grace``."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_store_port() -> int:
    """An S3 port whose neighbours (the master's, the volume servers', the filer's, and each one's gRPC
    port 10,000 above) are free and valid."""
    offsets = [0, 1200, 1211, 1212, 1213, 1220, 1221]
    for _ in range(200):
        base = random.randrange(20_000, 30_000)
        if all(_free(base + o) and _free(base + o + 10_000) for o in offsets):
            return base
    raise RuntimeError("no free ports for the cluster's object store")


def _address(port: int) -> Any:
    from warehouse.local_services import Address

    return Address("127.0.0.1", port)


# -- the failover run ----------------------------------------------------------------------------------


def _pdf(text: str) -> bytes:
    """A one-page PDF with a line of text (unique bytes per upload)."""
    content = f"BT /F1 14 Tf 100 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@dataclass
class Outcome:
    at: float
    ok: bool


@dataclass
class FailoverReport:
    acknowledged: dict[str, str] = field(default_factory=dict)  # file id -> sha256
    outcomes: list[Outcome] = field(default_factory=list)
    kills: list[tuple[str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    windows: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def _call(
    http: httpx.AsyncClient, report: FailoverReport, method: str, path: str, *, deadline: float, **kwargs: Any
) -> httpx.Response:
    """A request retried as the station client retries (same idempotency key) until it succeeds."""
    while True:
        try:
            r = await http.request(method, path, **kwargs)
            # 409 idempotency_in_progress: the first try's answer was cut off with its process; sent again
            if r.status_code < 500 and r.status_code != 429 and not still_answering(r):
                report.outcomes.append(Outcome(time.monotonic(), r.status_code < 400))
                return r
        except httpx.HTTPError:
            pass
        report.outcomes.append(Outcome(time.monotonic(), False))
        if time.monotonic() > deadline:
            raise RuntimeError(f"{method} {path} did not succeed before the run's deadline")
        await asyncio.sleep(0.5 + random.random())


async def _operator(url: str, token: str, unit: str, report: FailoverReport, stop: float, n: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        i = 0
        while time.monotonic() < stop:
            i += 1
            key = f"failover-{n}-{i}-{random.getrandbits(32)}"
            r = await _call(
                http, report, "POST", "/api/v1/dossiers", deadline=stop + 120,
                json={"procedure_code": "1.002891", "unit_code": unit,
                      "subject": {"name": "Nguyễn Văn An", "id_kind": "cccd", "id_number": "020190000001"}},
                headers={"Idempotency-Key": key},
            )  # fmt: skip
            if r.status_code != 201:
                report.problems.append(f"a dossier was refused: {r.status_code} {r.text[:200]}")
                return
            dossier = r.json()["id"]
            for part in range(2):
                data = _pdf(f"failover {n} {i} {part} {random.getrandbits(64)}")
                r = await _call(
                    http, report, "POST", f"/api/v1/dossiers/{dossier}/files", deadline=stop + 120, content=data,
                    headers={"Content-Type": "application/pdf", "X-File-Kind": "component",
                             "Idempotency-Key": f"{key}-{part}"},
                )  # fmt: skip
                if r.status_code != 201:
                    report.problems.append(f"an upload was refused: {r.status_code} {r.text[:200]}")
                    return
                report.acknowledged[r.json()["id"]] = hashlib.sha256(data).hexdigest()
            await asyncio.sleep(random.uniform(0.2, 1.0))


async def failover(cluster: Cluster, *, seconds: float, operators: int, admin_password: str) -> FailoverReport:
    report = FailoverReport()
    url = f"http://127.0.0.1:{cluster.settings.port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.post("/api/v1/auth/login", json={"login": "admin", "password": admin_password})
        r.raise_for_status()
        token = r.json()["access_token"]
        units = await http.get(
            "/api/v1/units", params={"level": "commune"}, headers={"Authorization": f"Bearer {token}"}
        )
        communes = [u["code"] for u in units.json()][: max(1, operators)]
    start = time.monotonic()
    stop = start + seconds
    load = [
        asyncio.create_task(_operator(url, token, communes[n % len(communes)], report, stop, n))
        for n in range(operators)
    ]
    step = seconds / 5
    for at, action, name in (
        (1, "kill", "api1"),
        (2, "kill", "worker1"),
        (3, "kill", "volume2"),
        (4, "start", "volume2"),
    ):
        await asyncio.sleep(max(0.0, start + at * step - time.monotonic()))
        if action == "kill":
            await asyncio.to_thread(cluster.kill, name)
        else:  # the volume server comes back with the data it had when it died
            await asyncio.to_thread(cluster.start_volume, 2)
        report.kills.append((f"{action} {name}", time.monotonic()))
    await asyncio.gather(*load)
    print("failover: uploads done; checking (every upload inspected, its bytes, no double)", flush=True)
    await _judge(url, token, report, start, cluster.settings.database_url)
    return report


async def _judge(url: str, token: str, report: FailoverReport, start: float, database_url: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for what, at in report.kills:
        window = [o for o in report.outcomes if at <= o.at < at + WINDOW_SECONDS]
        failed = sum(1 for o in window if not o.ok)
        share = failed / len(window) if window else 0.0
        report.windows.append(f"{what} at {at - start:.0f} s: {failed} of {len(window)} requests failed ({share:.0%})")
        if share > WINDOW_BUDGET:
            report.problems.append(
                f"{what}: {share:.0%} of requests failed in {WINDOW_SECONDS:g} s (budget {WINDOW_BUDGET:.0%})"
            )
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        deadline = time.monotonic() + 300  # a lost inspection job comes back after stuck_after_seconds
        pending = set(report.acknowledged)
        while pending and time.monotonic() < deadline:
            for file_id in list(pending):
                r = await http.get(f"/api/v1/files/{file_id}")
                if r.status_code == 200 and r.json()["state"] in ("ready", "rejected"):
                    pending.discard(file_id)
            if pending:
                await asyncio.sleep(2)
        if pending:
            report.problems.append(f"{len(pending)} acknowledged uploads were never inspected")
        for file_id, sha256 in report.acknowledged.items():
            r = await http.get(f"/api/v1/files/{file_id}/content")
            if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != sha256:
                report.problems.append(f"file {file_id}: {r.status_code}, its bytes do not match what was acknowledged")
    recorded = await _files_recorded(database_url)
    if recorded != len(report.acknowledged):
        report.problems.append(f"{recorded} files recorded for {len(report.acknowledged)} acknowledged uploads")


async def _files_recorded(database_url: str) -> int:
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        return await Files(db.pool).count_all()
    finally:
        await db.close()


def run_cluster(base: Settings) -> int:
    """``warehouse cluster up``: the cluster with the configured settings, until Ctrl-C or SIGTERM."""
    cluster = Cluster(base)
    try:
        cluster.up()
        print(
            f"cluster: API in {API_PROCESSES} processes on http://127.0.0.1:{base.port}, {WORKERS} inspection "
            f"workers, SeaweedFS with {VOLUMES} volume servers (every object on two) serving S3 on "
            f"{base.s3_endpoint}; logs in {cluster.root / 'logs'}. Ctrl-C stops it.",
            flush=True,
        )
        while all(p.poll() is None for p in cluster.procs.values()):
            time.sleep(0.5)
        print("cluster: a process stopped; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.down()


def failover_overrides(base: Settings, port: int, s3_port: int) -> dict[str, Any]:
    """A cluster of its own beside the warehouse: its database, Redis database, bucket, ports and data."""
    url = base.database_url.rsplit("/", 1)[0] + "/warehouse_failover"
    return {
        "database_url": url,
        "database_app_url": "",
        "redis_url": base.redis_url.rsplit("/", 1)[0] + "/12",
        "s3_endpoint": f"127.0.0.1:{s3_port}",
        "s3_bucket": "warehouse-failover",
        "port": port,
        "data_dir": str(Path(base.data_dir).resolve() / "failover"),
        "ocr_enabled": False,
        "stuck_after_seconds": 20,  # a job lost with its worker comes back this soon
        # a request cut off with the killed API process is answered on its retry this soon (the run is
        # seconds long; in production a minute)
        "idempotency_claim_seconds": 5,
        "rate_account_rps": 100_000,
        "rate_unit_rps": 100_000,
        "rate_account_uploads": 1000,
        "rate_unit_uploads": 1000,
    }


def run_failover(base: Settings, *, seconds: float, operators: int) -> int:
    """``warehouse cluster failover``: a cluster of its own, loaded, broken in turn, then judged."""
    import secrets as _secrets

    password = base.admin_password or _secrets.token_urlsafe(16)
    overrides = failover_overrides(base, free_port(), free_store_port())
    overrides["admin_password"] = password
    asyncio.run(drop_database(overrides["database_url"]))
    cluster = Cluster(base, overrides)
    began = time.monotonic()
    try:
        cluster.up()
        print(f"failover: cluster up in {time.monotonic() - began:.0f} s; uploading for {seconds:g} s", flush=True)
        report = asyncio.run(failover(cluster, seconds=seconds, operators=operators, admin_password=password))
    finally:
        stopping = time.monotonic()
        cluster.down(grace=5)  # what it held is judged already
        print(f"failover: cluster stopped in {time.monotonic() - stopping:.0f} s", flush=True)
    print(f"failover: {len(report.acknowledged)} uploads acknowledged, {len(report.outcomes)} requests")
    for line in report.windows:
        print(f"failover: {line}")
    for problem in report.problems:
        print(f"failover: PROBLEM {problem}")
    print("failover: PASS, nothing acknowledged was lost or doubled" if report.ok else "failover: FAIL")
    return 0 if report.ok else 1
