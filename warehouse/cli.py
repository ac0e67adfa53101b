"""The ``warehouse`` command: run, prepare and look after the warehouse."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage import Database, Settings, app_database_url, ensure_database, get_settings, migrate, object_store
from warehouse.local_services import Address, LocalServices, answers
from warehouse.refusals import Refusal
from warehouse.security import Passwords
from warehouse.seed import seed

log = logging.getLogger("warehouse")


async def _ensure_bucket(settings: Settings, wait_seconds: float = 60) -> tuple[bool, list[str]]:
    """Create the bucket and set its versioning and lifecycle rules; a freshly started S3 server may need
    a few seconds before it accepts that. Returns whether it was created, and what the server could not
    set."""
    store = object_store(settings)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                created = await store.ensure_bucket(object_lock=settings.s3_object_lock != "off")
                break
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not accept the bucket: {exc}") from exc
                await asyncio.sleep(1)
        missing = await store.configure_bucket(
            versioning=settings.s3_versioning,
            abort_incomplete_days=settings.s3_abort_incomplete_days,
            noncurrent_days=settings.s3_noncurrent_days,
        )
        return created, missing
    finally:
        await store.aclose()


EXISTING = "already there: an earlier install's, used as it is"


async def _migrate(settings: Settings) -> None:
    created = await ensure_database(settings.database_url)
    print(f"database: {_database_label(settings.database_url)} ({'created now' if created else EXISTING})")
    applied = await migrate(settings.database_url, app_url=app_database_url(settings))
    print(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))
    made, missing = await _ensure_bucket(settings)
    print(
        f"bucket: {settings.s3_bucket} on {settings.s3_endpoint} ({'created now' if made else EXISTING}; "
        f"versioning {'on' if settings.s3_versioning else 'off'})"
    )
    if settings.s3_object_lock != "off" and not made:
        print(
            f"bucket: object lock ({settings.s3_object_lock}) needs a bucket made with it; this one existed "
            "already: if it was not made with object lock, accepted files are logged as not locked (see the runbook)"
        )
    for what in missing:
        # SeaweedFS, the local server, lacks some of these; the hourly upload expiry covers stale parts.
        print(f"bucket: the object store did not accept {what}; MinIO in production does")


async def _seed(settings: Settings) -> None:
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    try:
        report = await seed(
            db,
            suffix=settings.province_org_suffix,
            admin_password=settings.admin_password,
            passwords=Passwords.from_settings(settings),
        )
    finally:
        await db.close()
    units = ", ".join(f"{n} {level}" for level, n in sorted(report.units.items()))
    print(f"units: {units}")
    if report.starter_loaded:
        print(
            f"catalogue: loaded the SAMPLE starter catalogue ({report.catalogue_versions} procedures); "
            "import the province's own (README: The procedure catalogue)"
        )
    elif report.catalogue_versions:
        print(f"catalogue: {report.catalogue_versions} procedure versions, left as they are")
    else:
        print(
            "catalogue: empty (this warehouse already holds dossiers, so the sample is not loaded); import the "
            "province's own (README: The procedure catalogue)"
        )
    if report.admin_password:
        print(
            "admin: created login 'admin' with the generated password below (shown once; set "
            "WAREHOUSE_ADMIN_PASSWORD to choose it):"
        )
        print(f"    {report.admin_password}")
    elif report.admin_created:
        print("admin: created login 'admin' with the password from WAREHOUSE_ADMIN_PASSWORD")
    else:
        print(
            "admin: login 'admin' exists, left as it is (its password is not shown again; "
            "`.venv/bin/warehouse admin reset-password` gives it a new one)"
        )


def _serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings

    from warehouse.app import resolve_secret

    resolve_secret(settings)  # create the shared signing key once, before worker processes start
    Granian(
        "warehouse.app:create_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.api_workers,
        backlog=settings.api_backlog,
        backpressure=max(64, settings.api_max_connections // settings.api_workers),
        loop=Loops.uvloop,
        # hyper's header read timeout is also how long an idle kept-alive connection stays open
        http1_settings=HTTP1Settings(header_read_timeout=settings.api_keep_alive_seconds * 1000),
        log_access=settings.access_log,
    ).serve()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a service manager's stop (or `kill`) ends `up` as Ctrl-C does


def _hurry(children: list[subprocess.Popen[bytes]]) -> Any:
    def handler(signum: int, frame: object) -> None:
        alive = [c for c in children if c.poll() is None]
        for c in alive:
            c.kill()
        if alive:
            print("warehouse: stopped the API and workers at once; their unfinished jobs are taken up next start")
        else:
            print("warehouse: stopping the local services this command started; a moment")

    return handler


def _up(settings: Settings) -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # The API's server shares its port with any other on it (SO_REUSEPORT): a second `make run` would
    # silently serve beside the first instead of saying so.
    if answers(Address("127.0.0.1" if settings.host in ("", "0.0.0.0") else settings.host, settings.port)):
        print(
            f"warehouse: something already answers on {settings.host}:{settings.port} (another `make run`?). "
            "Stop it first, or choose another port with WAREHOUSE_PORT.",
            file=sys.stderr,
        )
        return 1
    services = LocalServices(settings)
    started: set[str] = set()
    try:
        for name, now, line in services.up():
            print(line)
            if now:
                started.add(name)
        asyncio.run(_migrate(settings))
        asyncio.run(_seed(settings))
        children = [
            subprocess.Popen([sys.executable, "-m", "warehouse", "serve"]),
            subprocess.Popen([sys.executable, "-m", "workers"]),
        ]
        if settings.ocr_enabled:
            children.append(subprocess.Popen([sys.executable, "-m", "workers", "--ocr"]))
        print(
            f"warehouse: API on http://{settings.host}:{settings.port} (docs at /schema), "
            f"inspection worker{' and OCR worker' if settings.ocr_enabled else ''} running. "
            "Ctrl-C (or SIGTERM) stops everything this command started."
        )
        try:
            while all(c.poll() is None for c in children):
                time.sleep(0.5)
            print("warehouse: a child process stopped; stopping the rest")
        except KeyboardInterrupt:
            print("\nwarehouse: stopping (Ctrl-C again stops the API and workers at once)")
        finally:
            # From here a second Ctrl-C (or SIGTERM) hurries the stop instead of breaking it off.
            signal.signal(signal.SIGINT, _hurry(children))
            signal.signal(signal.SIGTERM, _hurry(children))
            for c in children:
                if c.poll() is None:
                    c.send_signal(signal.SIGTERM)
            for c in children:
                try:
                    c.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    c.kill()
        return 0
    finally:
        if started:
            for line in services.down(only=started):
                print(line)
        # Everything is stopped: a Ctrl-C from here on, as the process exits, is ignored rather than
        # killing the interpreter on its way out.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _provision(settings: Settings, args: argparse.Namespace) -> list[Any] | None:
    from storage import Queue
    from warehouse.accounts import provision
    from warehouse.context import Services
    from warehouse.principal import principal_for

    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    store = object_store(settings)
    queue = Queue.from_url(settings.redis_url)
    try:
        services = Services(settings=settings, db=db, objects=store, queue=queue)
        admin = await services.accounts.get_by_login(args.as_login)
        if admin is None:
            print(f"warehouse: no account {args.as_login!r} to act as", file=sys.stderr)
            return None
        return await provision(
            services,
            await principal_for(services, admin),
            parent_code=args.parent,
            level=args.level,
            per_unit=args.per_unit,
            role=args.role,
        )
    finally:
        await queue.close()
        await store.aclose()
        await db.close()


def _write_credentials(created: list[Any], output: str | None) -> None:
    from warehouse.accounts import write_credentials

    rows = [(c.login, c.password, c.unit_code, c.unit_name, c.role) for c in created]
    if output:  # a file an administrator opens in a spreadsheet: UTF-8 with its byte-order mark
        with open(output, "w", newline="", encoding="utf-8-sig") as out:
            write_credentials(out, rows)
    else:
        write_credentials(sys.stdout, rows)
    print(f"accounts: {len(created)} created (their one-time passwords are shown this once)", file=sys.stderr)


async def _synthetic(settings: Settings, n: int) -> None:
    from storage import Accounts
    from warehouse.synthetic import load_synthetic

    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    try:
        admin = await Accounts(db.pool).get_by_login("admin")
        assert admin is not None
        started = time.monotonic()
        loaded = await load_synthetic(db, n, created_by=admin.id)
        print(f"synthetic: {loaded} dossiers in {time.monotonic() - started:.0f}s")
    finally:
        await db.close()


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from storage import Queue, SignIns
    from warehouse import console

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    db = await Database.connect(settings.database_url, min_size=1, max_size=2)
    queue = Queue.from_url(settings.redis_url)
    passwords = Passwords.from_settings(settings)
    try:
        if args.admin_command == "create":
            done = await console.create_admin(db, passwords, login=args.login, password=password)
        else:
            done = await console.reset_password(
                db, SignIns(queue.redis), passwords, login=args.login, password=password
            )
    except console.ConsoleRefusal as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 1
    finally:
        await queue.close()
        await db.close()
    what = "created" if done.created else "has a new password"
    where = _database_label(settings.database_url)
    if done.password:
        print(f"admin: {done.login} {what} in {where}; its password, shown this once:")
        print(f"    {done.password}")
    else:
        print(f"admin: {done.login} {what} in {where}, with the password you gave")
    if not done.created:
        print("admin: its earlier sign-ins, tokens and API keys no longer work")
    return 0


def _database_label(url: str) -> str:
    """``database warehouse on 127.0.0.1:5432``, never the password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"database {parts.path.lstrip('/') or 'postgres'} on {parts.hostname}:{parts.port or 5432}"


def _probe(url: str, kind: str) -> int:
    """A health check for containers: the image needs no curl."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health/{kind}", timeout=5) as r:
            return 0 if r.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"warehouse: /health/{kind} answered {exc.code}: {exc.read()[:300].decode(errors='replace')}")
        return 1
    except OSError as exc:
        print(f"warehouse: /health/{kind} did not answer: {exc}")
        return 1


def _worker_alive(settings: Settings, *, ocr: bool) -> int:
    from arq.worker import async_check_health

    from storage import OCR_QUEUE_NAME, QUEUE_NAME, redis_settings

    queue = OCR_QUEUE_NAME if ocr else QUEUE_NAME
    return int(asyncio.run(async_check_health(redis_settings(settings.redis_url), queue_name=queue)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warehouse", description="Kho số hóa: the digitization warehouse")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start services, migrate, seed, then serve the API and a worker")
    sub.add_parser("client", help="the scanning station's client: login, whoami, upload, watch, status", add_help=False)
    sub.add_parser("serve", help="serve the HTTP API")
    worker = sub.add_parser("worker", help="run the inspection worker (or with --ocr the OCR worker)")
    worker.add_argument("--ocr", action="store_true", help="serve the OCR queue instead of the inspection queue")
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if a worker of this kind beat in the last minute, else 1"
    )
    probe = sub.add_parser("probe", help="exit 0 if this machine's API answers /health/live (or /health/ready)")
    probe.add_argument("kind", choices=["live", "ready"])
    probe.add_argument("--url", help="the API's address (default http://127.0.0.1:WAREHOUSE_PORT)")
    sub.add_parser("migrate", help="apply database migrations and create the bucket")
    seed_cmd = sub.add_parser("seed", help="create the province's units and the first admin (idempotent)")
    seed_cmd.add_argument(
        "--synthetic", type=int, metavar="N", help="then add N synthetic dossiers (benchmarks, rehearsals)"
    )
    services = sub.add_parser("services", help="local Postgres, Redis and S3 server")
    services.add_argument("action", choices=["up", "down", "status"])
    services.add_argument(
        "--record",
        metavar="FILE",
        help="up: note in FILE the services this call started; down: stop only those noted in FILE",
    )
    services.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="down: how long each service may take to stop before it is killed (default 30)",
    )
    admin = sub.add_parser("admin", help="enter an install from the server's console: reset or create an admin")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    for name, text in (
        ("reset-password", "give an account (by default 'admin') a new password, shown once"),
        ("create", "create another province administrator"),
    ):
        cmd = admin_sub.add_parser(name, help=text)
        cmd.add_argument("--login", default="admin" if name == "reset-password" else None, required=name == "create")
        cmd.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input instead of generating one",
        )
    accounts = sub.add_parser("accounts", help="manage accounts")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    prov = accounts_sub.add_parser(
        "provision", help="create N accounts for every unit of a level under a parent (only the missing ones)"
    )
    prov.add_argument("--parent", required=True, help="code of the parent unit, e.g. 000.00.22.HXX")
    prov.add_argument("--level", required=True, choices=["department", "district", "commune"])
    prov.add_argument("--per-unit", type=int, default=3)
    prov.add_argument("--role", default="operator", choices=["unit_admin", "operator", "viewer", "signer"])
    prov.add_argument("--as-login", default="admin", help="the administrator the change is recorded for")
    prov.add_argument("--output", help="write the CSV of new accounts here instead of standard output")
    cluster = sub.add_parser("cluster", help="the warehouse as a cluster on this machine, and its failover run")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    cluster_sub.add_parser("up", help="API in two processes, two workers, SeaweedFS on three volume servers")
    failover_cmd = cluster_sub.add_parser(
        "failover",
        help="start a cluster of its own, upload as the communes do, kill an API process, a worker and a storage "
        "node in turn, then prove every acknowledged upload is there once with its bytes",
    )
    failover_cmd.add_argument("--seconds", type=float, default=300, help="how long the uploads run (default 300)")
    failover_cmd.add_argument("--operators", type=int, default=8, help="operators uploading at once (default 8)")
    drill = sub.add_parser(
        "drill",
        help="the restore drill: back up, restore into an empty database and bucket, check every record's bytes",
    )
    drill.add_argument("--to", metavar="DIR", help="where the backup goes (default: a temporary folder, removed after)")
    drill.add_argument("--keep", action="store_true", help="keep the drill's database and bucket to look at")
    signing = sub.add_parser("signing", help="the units' signing keys")
    signing_sub = signing.add_subparsers(dest="signing_command", required=True)
    demo = signing_sub.add_parser(
        "demo-key", help="a unit's key from a local test authority, to try signing out (never for real copies)"
    )
    demo.add_argument("unit", help="the unit's code, e.g. 000.01.21.HXX")
    return parser


def _demo_key(settings: Settings, unit: str) -> int:
    """A unit's PKCS#12 file issued by a local test authority, in the signing keys' folder."""
    from cryptography.hazmat.primitives import serialization

    from warehouse import pki
    from warehouse.legal import keys_folder

    folder = keys_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "demo-ca.pem", folder / "demo-ca.key"
    if ca_cert.exists() and ca_key.exists():
        key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
        from cryptography import x509

        authority = pki.Issued(key, x509.load_pem_x509_certificate(ca_cert.read_bytes()))  # type: ignore[arg-type]
    else:
        authority = pki.authority()
        ca_key.touch(mode=0o600)
        ca_key.write_bytes(
            authority.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        ca_cert.write_bytes(authority.pem)
    issued = pki.issue(authority, f"Đơn vị {unit} (THỬ NGHIỆM)", organisation=unit)
    passphrase = secrets.token_urlsafe(18).encode()
    (folder / f"{unit}.pass").touch(mode=0o600)
    (folder / f"{unit}.pass").write_bytes(passphrase + b"\n")
    (folder / f"{unit}.p12").touch(mode=0o600)
    (folder / f"{unit}.p12").write_bytes(issued.pkcs12(passphrase, [authority]))
    print(f"{folder / (unit + '.p12')}: a TEST key of unit {unit} (serial {issued.serial})")
    print("never sign real copies with it: a unit's real certificate comes from a licensed provider")
    print(f"its authority: {ca_cert} (WAREHOUSE_SIGNATURE_TRUST_ROOTS to trust it at inspection)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "up":
            return _up(settings)
        if args.command == "serve":
            _serve(settings)
        elif args.command == "worker":
            if args.check:
                return _worker_alive(settings, ocr=args.ocr)
            os.execv(sys.executable, [sys.executable, "-m", "workers", *(["--ocr"] if args.ocr else [])])
        elif args.command == "probe":
            return _probe(args.url or f"http://127.0.0.1:{settings.port}", args.kind)
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "seed":
            asyncio.run(_seed(settings))
            if args.synthetic:
                asyncio.run(_synthetic(settings, args.synthetic))
        elif args.command == "admin":
            return asyncio.run(_admin(settings, args))
        elif args.command == "accounts":
            created = asyncio.run(_provision(settings, args))
            if created is None:
                return 1
            _write_credentials(created, args.output)
        elif args.command == "cluster":
            from warehouse.cluster import run_cluster, run_failover

            if args.cluster_command == "up":
                signal.signal(signal.SIGTERM, _stop_on_sigterm)
                return run_cluster(settings)
            return run_failover(settings, seconds=args.seconds, operators=args.operators)
        elif args.command == "drill":
            from warehouse.drill import run_drill

            return run_drill(settings, backup_dir=args.to, keep=args.keep)
        elif args.command == "signing":
            return _demo_key(settings, args.unit)
        elif args.command == "services":
            local = LocalServices(settings)
            record = Path(args.record) if args.record else None
            if args.action == "up":
                started = []
                for name, now, line in local.up():
                    print(line)
                    if now:
                        started.append(name)
                if record is not None:  # what a later `down --record` stops (what was running stays)
                    noted = set(record.read_text().split()) if record.exists() else set()
                    record.parent.mkdir(parents=True, exist_ok=True)
                    record.write_text("\n".join(sorted(noted | set(started))) + "\n")
            elif args.action == "down":
                if record is not None:
                    only = set(record.read_text().split()) if record.exists() else set()
                    lines = local.down(only=only, grace_seconds=args.grace) if only else []
                    record.unlink(missing_ok=True)
                else:
                    lines = local.down(grace_seconds=args.grace)
                for line in lines:
                    print(line)
            else:
                for name, (addr, ok) in local.status().items():
                    print(f"{name}: {'answering' if ok else 'NOT answering'} on {addr.host}:{addr.port}")
    except KeyboardInterrupt:
        print("\nwarehouse: stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"warehouse: {exc}", file=sys.stderr)
        return 1
    except Refusal as exc:
        print(f"warehouse: {exc.detail}", file=sys.stderr)
        return 1
    return 0
