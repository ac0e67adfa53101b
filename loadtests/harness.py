"""Starting a private warehouse for a benchmark: its own database, Redis database and bucket.

Everything goes through the ``warehouse`` command and HTTP, as a real deployment would be driven.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from minio import Minio

MiB = 1024 * 1024

# Settings that switch the fair-share limits off, for measurements of the path rather than the limits.
NO_LIMITS = {
    "WAREHOUSE_RATE_ACCOUNT_UPLOADS": "1000",
    "WAREHOUSE_RATE_UNIT_UPLOADS": "1000",
    "WAREHOUSE_RATE_ACCOUNT_UPLOAD_MB_PER_MINUTE": "1000000",
    "WAREHOUSE_RATE_UNIT_UPLOAD_MB_PER_MINUTE": "1000000",
    "WAREHOUSE_RATE_ACCOUNT_RPS": "100000",
    "WAREHOUSE_RATE_UNIT_RPS": "100000",
}


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the API server and its worker processes)."""
    out = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as fh:
            for child in fh.read().split():
                out += process_tree(int(child))
    return out


def cpu_seconds(pid: int) -> float:
    """User and system CPU of the process and its children still running (the API's workers)."""
    total = 0
    for p in process_tree(pid):
        with open(f"/proc/{p}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, over all cores (``/proc/stat``: user,
    nice, system, irq and softirq; not idle, I/O wait or time stolen by the host)."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class MachineCpu:
    """Samples ``machine_busy_seconds`` in a thread, so the CPU spent in a stretch of time known only
    afterwards (the steady state of a benchmark) can be read off: ``busy_between(t0, t1)``, wall times
    from ``time.time()``."""

    def __init__(self, interval: float = 0.1) -> None:
        self._interval = interval
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MachineCpu:
        self._samples.append((time.time(), machine_busy_seconds()))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._samples.append((time.time(), machine_busy_seconds()))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._samples.append((time.time(), machine_busy_seconds()))

    def _at(self, t: float) -> float:
        samples = self._samples
        for (t0, b0), (t1, b1) in itertools.pairwise(samples):
            if t0 <= t <= t1:
                return b0 + (b1 - b0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)
        return samples[0][1] if t < samples[0][0] else samples[-1][1]

    def busy_between(self, t0: float, t1: float) -> float:
        return self._at(t1) - self._at(t0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveApi:
    """The API as a real process on a local port, waited for until it answers: the one way the tests,
    the benchmarks and the load runner start it.

    Each process (the API, and any ``also`` beside it, e.g. workers) runs in its own process group, so
    its own children (the API's worker processes, the workers' inspection children) go with it. Their
    output goes to ``log``. ``crash()`` kills them all at once, as a power cut would.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        log: str,
        ready_path: str = "/health/live",
        timeout: float = 30,
        also: list[list[str]] | None = None,
    ) -> None:
        self.env = env
        self.port = int(env["WAREHOUSE_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.ready_path = ready_path
        self.timeout = timeout
        self.also = also or []
        self.command = ["-m", "warehouse", "serve"]  # the API's; a benchmark's floor serves another app
        self.proc: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LiveApi:
        os.makedirs(os.path.dirname(self.log) or ".", exist_ok=True)
        with open(self.log, "ab") as out:  # each child keeps its own copy of the file
            for args in [self.command, *self.also]:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, *args], env=self.env, stdout=out, stderr=out, start_new_session=True
                    )
                )
        self.proc = self.procs[0]
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.__exit__()
                raise RuntimeError(f"the API did not start; see {self.log}")
            time.sleep(0.2)

    def crash(self) -> None:
        """Kill every process at once, with their children."""
        for p in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            stop_group(p)


@dataclass
class Warehouse:
    url: str
    admin_password: str
    env: dict[str, str]
    pid: int


def bench_env(name: str, port: int, password: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "WAREHOUSE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/warehouse_{name}",
        "WAREHOUSE_REDIS_URL": "redis://127.0.0.1:6379/14",
        "WAREHOUSE_S3_BUCKET": f"warehouse-{name.replace('_', '-')}",
        "WAREHOUSE_ADMIN_PASSWORD": password,
        "WAREHOUSE_SECRET_KEY": secrets.token_urlsafe(32),
        "WAREHOUSE_HOST": "127.0.0.1",
        "WAREHOUSE_PORT": str(port),
        # Every simulated operator signs in from this machine's one address.
        "WAREHOUSE_LOGIN_ADDRESS_PER_MINUTE": "1000000",
        **extra,
    }


def reset_database(url: str) -> None:
    import asyncio

    async def drop() -> None:
        base, name = url.rsplit("/", 1)
        conn = await asyncpg.connect(base + "/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def s3_client(env: dict[str, str]) -> Minio:
    return Minio(
        endpoint=env.get("WAREHOUSE_S3_ENDPOINT", "127.0.0.1:8333"),
        access_key=env.get("WAREHOUSE_S3_ACCESS_KEY", "warehouse"),
        secret_key=env.get("WAREHOUSE_S3_SECRET_KEY", "warehouse-local-secret"),
        secure=env.get("WAREHOUSE_S3_SECURE", "false").lower() == "true",
        region="us-east-1",
    )


def clear_bucket(env: dict[str, str]) -> None:
    s3 = s3_client(env)
    bucket = env["WAREHOUSE_S3_BUCKET"]
    if not s3.bucket_exists(bucket_name=bucket):
        return
    for obj in s3.list_objects(bucket_name=bucket, recursive=True):
        s3.remove_object(bucket_name=bucket, object_name=obj.object_name)


def prepare(name: str, **extra: str) -> tuple[dict[str, str], str]:
    """A fresh database for this benchmark, migrated and seeded. Returns (environment, admin password)."""
    password = secrets.token_urlsafe(16)
    env = bench_env(name, free_port(), password, **extra)
    reset_database(env["WAREHOUSE_DATABASE_URL"])
    warehouse = [sys.executable, "-m", "warehouse"]
    subprocess.run([*warehouse, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([*warehouse, "seed"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return env, password


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session`` and every process it started (API workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@contextmanager
def serving(env: dict[str, str], password: str, **extra: str) -> Iterator[Warehouse]:
    """The API as its own process, for the length of the block."""
    env = {**env, **extra}
    log = os.path.join(env.get("WAREHOUSE_DATA_DIR", ".data"), f"bench-{env['WAREHOUSE_PORT']}.log")
    with LiveApi(env, log=log) as api:
        assert api.proc is not None
        yield Warehouse(url=api.url, admin_password=password, env=env, pid=api.proc.pid)


async def login(http: httpx.AsyncClient, user: str, password: str) -> str:
    r = await http.post("/api/v1/auth/login", json={"login": user, "password": password})
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


async def operator_tokens(http: httpx.AsyncClient, admin: str, parent: str, per_unit: int) -> dict[str, list[str]]:
    """Provision operators for every commune under ``parent``, set their passwords, sign them in.

    Returns unit code -> bearer tokens."""
    r = await http.post(
        "/api/v1/accounts/provision",
        json={"parent_unit_code": parent, "level": "commune", "per_unit": per_unit, "role": "operator"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    r.raise_for_status()
    tokens: dict[str, list[str]] = {}
    for account in r.json()["accounts"]:
        one_time = await login(http, account["login"], account["password"])
        new = secrets.token_urlsafe(16)
        changed = await http.post(
            "/api/v1/me/password",
            json={"current_password": account["password"], "new_password": new},
            headers={"Authorization": f"Bearer {one_time}"},
        )
        changed.raise_for_status()
        tokens.setdefault(account["unit_code"], []).append(await login(http, account["login"], new))
    return tokens


async def new_dossier(http: httpx.AsyncClient, token: str, name: str = "Hồ sơ đo hiệu năng") -> str:
    """A dossier of the caller's unit to upload into; its id."""
    r = await http.post(
        "/api/v1/dossiers",
        json={"procedure_code": "1.002891", "subject": {"name": name, "id_kind": "other", "id_number": "bench"}},
        headers=auth(token),
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def bench_dossier(http: httpx.AsyncClient, admin_password: str) -> tuple[str, str]:
    """Sign in as the admin and make a dossier to upload into: (token, dossier id)."""
    token = await login(http, "admin", admin_password)
    return token, await new_dossier(http, token)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def auth(token: str, **more: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}
