"""Run a load shape against a warehouse and judge it: ``make load SHAPE=communes DURATION=120``.

Without ``--host`` it starts a local warehouse (services, its own ``warehouse_load`` database, the API
and a worker) and stops it afterwards. It provisions the accounts through the API, runs Locust
headless, and writes ``loadtests/reports/<shape>-<time>/``: Locust's CSV and HTML, ``latency.png``,
``throughput.png`` and ``summary.md`` with one verdict line per target and a final ``Verdict:`` line.
It exits 1 when any target is missed (``--report-only`` always exits 0 once the report is written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from loadtests.accounts import forget_cached_accounts, prepare_accounts, write_accounts
from loadtests.harness import LiveApi, clear_bucket, free_port, reset_database
from loadtests.verdict import judge, plot, write_summary

HERE = Path(__file__).resolve().parent
LOCAL_CACHE_KEY = "local-warehouse_load"
DEFAULT_DURATION = {
    "before": 120,
    "communes": 120,
    "campaign": 120,
    "soak": 7200,
    "rollout": 3600,
    "capacity": 60,
    "smoke": 10,
}


@contextmanager
def local_warehouse(api_workers: int) -> Iterator[tuple[str, str]]:
    """A warehouse on this machine with its own database and bucket; yields (URL, admin password)."""
    data_dir = Path(os.environ.get("WAREHOUSE_DATA_DIR", ".data")).resolve()
    secret_file = data_dir / "load-admin-password"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(16))
        secret_file.chmod(0o600)
    password = secret_file.read_text().strip()
    port = free_port()
    env = {
        **os.environ,
        "WAREHOUSE_DATA_DIR": str(data_dir),
        "WAREHOUSE_DATABASE_URL": os.environ.get(
            "LOAD_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/warehouse_load"
        ),
        "WAREHOUSE_REDIS_URL": os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "WAREHOUSE_S3_BUCKET": "warehouse-load",
        "WAREHOUSE_ADMIN_PASSWORD": password,
        "WAREHOUSE_PORT": str(port),
        "WAREHOUSE_API_WORKERS": str(api_workers),
        # Every simulated commune signs in from this machine's one address (in the field, each has its own).
        "WAREHOUSE_LOGIN_ADDRESS_PER_MINUTE": os.environ.get("WAREHOUSE_LOGIN_ADDRESS_PER_MINUTE", "1000000"),
    }
    warehouse = [sys.executable, "-m", "warehouse"]
    subprocess.run([*warehouse, "services", "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    # Each local run starts empty, so runs compare and their scans do not pile up on this disk.
    reset_database(env["WAREHOUSE_DATABASE_URL"])
    with contextlib.suppress(Exception):
        clear_bucket(env)
    forget_cached_accounts(LOCAL_CACHE_KEY)
    for step in ("migrate", "seed"):
        subprocess.run([*warehouse, step], env=env, check=True, stdout=subprocess.DEVNULL)
    also = [["-m", "workers"]]
    if env.get("WAREHOUSE_OCR_ENABLED", "true").lower() not in ("false", "0", "no"):
        also.append(["-m", "workers", "--ocr"])  # as `make run` does: OCR on its own queue, at a lower priority
    log = str(data_dir / "logs" / "load-warehouse.log")
    try:
        with LiveApi(env, log=log, ready_path="/health/ready", timeout=60, also=also) as api:
            yield api.url, password
    finally:
        with contextlib.suppress(Exception):
            clear_bucket(env)


def run_locust(
    host: str, shape: str, duration: float, report_dir: Path, accounts: Path, workers: int, external: int = 0
) -> int:
    env = {
        **os.environ,
        "LOAD_SHAPE": shape,
        "LOAD_DURATION": str(duration),
        "LOAD_ACCOUNTS": str(accounts),
        "LOAD_REPORT_DIR": str(report_dir),
    }
    base = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--host", host, "--loglevel", "WARNING"]
    outputs = [
        "--csv",
        str(report_dir / "locust"),
        "--csv-full-history",
        "--html",
        str(report_dir / "report.html"),
        "--headless",
        "--only-summary",  # the locustfile prints one line of progress every 10 s instead
    ]
    if external:
        # Workers on other machines connect to this master (see deploy/compose.yaml's load profile).
        remote = [*base, *outputs, "--master", "--master-bind-host", "0.0.0.0", "--expect-workers", str(external)]
        return subprocess.run(remote, env=env, check=False).returncode
    if workers <= 1:
        return subprocess.run([*base, *outputs], env=env, check=False).returncode
    port = free_port()
    master = subprocess.Popen(
        [*base, *outputs, "--master", "--expect-workers", str(workers), "--master-bind-port", str(port)], env=env
    )
    helpers = [
        subprocess.Popen([*base, "--worker", "--master-port", str(port)], env=env, stdout=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    code = master.wait()
    for h in helpers:
        h.wait(60)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="communes", choices=sorted(DEFAULT_DURATION))
    parser.add_argument("--duration", type=float, help="seconds at full load (per step for capacity)")
    parser.add_argument("--host", help="a running warehouse; without it a local one is started and stopped")
    parser.add_argument("--admin-login", default=os.environ.get("LOAD_ADMIN_LOGIN", "admin"))
    parser.add_argument("--admin-password", default=os.environ.get("LOAD_ADMIN_PASSWORD"))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("LOAD_WORKERS", "1")),
        help="Locust worker processes on this machine (distributed mode when above 1)",
    )
    parser.add_argument(
        "--external-workers",
        type=int,
        default=int(os.environ.get("LOAD_EXTERNAL_WORKERS", "0")),
        help="wait for this many Locust workers from other machines (port 5557) instead of starting any",
    )
    parser.add_argument("--api-workers", type=int, default=2, help="API processes of the local warehouse")
    parser.add_argument("--report-dir", help="where to write the report (default loadtests/reports/<shape>-<time>)")
    parser.add_argument("--report-only", action="store_true", help="exit 0 whatever the verdict")
    args = parser.parse_args()
    duration = args.duration or DEFAULT_DURATION[args.shape]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report_dir = Path(args.report_dir) if args.report_dir else HERE / "reports" / f"{args.shape}-{stamp}"
    report_dir.mkdir(parents=True, exist_ok=True)

    def run(host: str, password: str, cache_key: str | None = None) -> int:
        print(f"load: preparing accounts on {host} ...", flush=True)
        accounts = asyncio.run(
            prepare_accounts(host, args.admin_login, password, cache_key=cache_key, small=args.shape == "smoke")
        )
        accounts_file = report_dir / "accounts.json"
        write_accounts(accounts_file, accounts, (args.admin_login, password))
        print(
            f"load: {sum(map(len, accounts.values()))} accounts ready; running {args.shape} "
            f"({duration:g} s at full load) ...",
            flush=True,
        )
        try:
            code = run_locust(
                host, args.shape, duration, report_dir, accounts_file, args.workers, args.external_workers
            )
        finally:
            accounts_file.unlink(missing_ok=True)  # passwords do not stay in reports
        if not (report_dir / "locust_stats.csv").exists():
            print(f"load: Locust wrote no statistics (exit {code})", file=sys.stderr)
            return 2
        checks, facts = judge(report_dir, args.shape)
        plot(report_dir, shape=args.shape)
        passed = write_summary(report_dir, args.shape, host, checks, facts)
        for check in checks:
            if not check.ok:
                print("  " + check.line)
        print(f"load: Verdict: {'PASS' if passed else 'FAIL'} — {report_dir / 'summary.md'}")
        return 0 if passed or args.report_only else 1

    if args.host:
        if not args.admin_password:
            parser.error("--admin-password (or LOAD_ADMIN_PASSWORD) is needed with --host")
        return run(args.host.rstrip("/"), args.admin_password)
    with local_warehouse(args.api_workers) as (url, password):
        return run(url, password, cache_key=LOCAL_CACHE_KEY)


if __name__ == "__main__":
    sys.exit(main())
