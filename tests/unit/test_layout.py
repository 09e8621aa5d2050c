"""The shape the project promises: the shared runtime imports no service."""

from __future__ import annotations

import ast

from tests.conftest import repo_root


def imported_modules(path: str) -> set[str]:
    tree = ast.parse((repo_root() / path).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_shared_runtime_imports_no_service() -> None:
    runtime = sorted(p.relative_to(repo_root()) for p in (repo_root() / "crieur").rglob("*.py"))
    assert runtime
    for path in runtime:
        services = {m for m in imported_modules(str(path)) if m.split(".")[0] == "services"}
        assert not services, f"{path} imports {services}"


def test_the_village_runs_every_service_by_module_name() -> None:
    from crieur.village import SERVICES

    modules = {s.module for s in SERVICES}
    assert {"services.notices", "services.panel"} <= modules
    for service in SERVICES:
        assert (repo_root() / service.module.replace(".", "/") / "__main__.py").exists()
