"""Who may import whom: storage nothing of ours; warehouse and workers not each other;
loadtests none of them, since it talks to the warehouse over HTTP like a real client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import storage

ROOT = Path(__file__).resolve().parent.parent
OURS = {"storage", "warehouse", "workers", "loadtests"}
ALLOWED = {
    "storage": set(),
    "warehouse": {"storage"},
    "workers": {"storage"},
    "loadtests": set(),
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
    """`warehouse client` runs on scanning stations against any warehouse, over HTTP only."""
    found: set[str] = set()
    for path in (ROOT / "warehouse" / "client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
    ours = {m for m in found if m.split(".")[0] in OURS}
    assert ours and all(m.startswith("warehouse.client") for m in ours), ours
