"""Who may import whom: storage nothing of ours; warehouse and workers not each other;
loadtests only the station client's HTTP, since it talks to the warehouse over HTTP like a real client."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import storage

ROOT = Path(__file__).resolve().parent.parent
OURS = {"storage", "warehouse", "workers", "loadtests"}
ALLOWED = {
    "storage": set(),
    "warehouse": {"storage"},
    "workers": {"storage"},
    "loadtests": {"warehouse"},  # warehouse.client only: see test_loadtests_use_only_the_client
}


def imported_packages(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return (found & OURS) - {package}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_rules(package: str) -> None:
    assert imported_packages(package) <= ALLOWED[package]


def test_storage_public_names_exist() -> None:
    for name in storage.__all__:
        assert hasattr(storage, name), name


def test_the_station_client_imports_no_server_code() -> None:
    """`warehouse client` runs on scanning stations against any warehouse, over HTTP only; of the
    server's modules it reads only warehouse.rules, the field shapes both check (standard library)."""
    found: set[str] = set()
    for path in (ROOT / "warehouse" / "client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
    ours = {m for m in found if m.split(".")[0] in OURS}
    assert ours and all(m.startswith(("warehouse.client", "warehouse.rules")) for m in ours), ours
    rules = ast.parse((ROOT / "warehouse" / "rules.py").read_text(encoding="utf-8"))
    for node in ast.walk(rules):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert all(n.split(".")[0] in sys.stdlib_module_names or n == "__future__" for n in names), names


def test_loadtests_use_only_the_client() -> None:
    modules = set()
    for path in (ROOT / "loadtests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "warehouse":
                modules.add(node.module)
    assert all(m.startswith("warehouse.client") for m in modules), modules


def test_the_station_client_installs_alone() -> None:
    """`pip install kho-so-hoa` on a station pulls only the project's own dependencies (the server is
    the `server` extra); the client imports nothing else, and nothing of the server's at run time."""
    import subprocess
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    third_party: set[str] = set()
    for path in [*(ROOT / "warehouse" / "client").rglob("*.py"), ROOT / "warehouse" / "command.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            third_party |= {n.split(".")[0] for n in names if n.split(".")[0] not in sys.stdlib_module_names}
    assert third_party - OURS <= declared, f"the client uses {third_party - OURS}, declares {declared}"

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, warehouse.command, warehouse.client.cli, warehouse.client.manifest;"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    server = {"asyncpg", "litestar", "minio", "pypdf", "ocrmypdf", "matplotlib", "redis", "arq", "storage", "workers"}
    assert not server & set(loaded), server & set(loaded)


# The use cases: they know no HTTP (refusals in warehouse/refusals.py become statuses in one place,
# warehouse/errors.py) and hold no SQL (that is storage's).
DOMAIN = (
    "accounts",
    "console",
    "context",
    "dossier_rules",
    "dossiers",
    "fair_share",
    "principal",
    "refusals",
    "reports",
    "rules",
    "security",
    "seed",
    "sessions",
    "signin",
    "synthetic",
    "units",
    "uploads",
)
HTTP = ("litestar", "msgspec", "warehouse.errors", "warehouse.api", "warehouse.app", "warehouse.auth", "granian")
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|ROLE|DATABASE)"
    r"|ALTER\s+(TABLE|ROLE)|DROP\s+(TABLE|DATABASE))\b",
    re.S,
)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", DOMAIN)
def test_the_domain_knows_no_http(module: str) -> None:
    imported = _imports(ROOT / "warehouse" / f"{module}.py")
    assert not {m for m in imported if m.startswith(HTTP)}, imported
    text = (ROOT / "warehouse" / f"{module}.py").read_text(encoding="utf-8")
    assert "Problem(" not in text and "status_code" not in text


def test_no_sql_outside_storage() -> None:
    """The warehouse's database is reached through storage/ only. (The station client's journal is its
    own SQLite file; the benchmarks run bare SQL on purpose, as the floor they compare against.)"""
    found = []
    for package in ("warehouse", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            if "client" in path.relative_to(ROOT).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
