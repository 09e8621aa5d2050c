"""The shape the project promises: the shared runtime imports no service."""

from __future__ import annotations

import ast

from tests.helpers import repo_root


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
        path = repo_root() / service.module.replace(".", "/")
        # A service package has a __main__.py; a stand-in may be one module (crieur_dev.standins.smtp).
        assert (path / "__main__.py").exists() or path.with_suffix(".py").exists(), service


def test_tests_import_helpers_never_other_test_modules() -> None:
    # Importing a test module runs its tests' module code twice and couples test files;
    # shared code lives in helpers modules (or conftests).
    for path in sorted((repo_root() / "tests").rglob("*.py")):
        relative = str(path.relative_to(repo_root()))
        for module in imported_modules(relative):
            last = module.split(".")[-1]
            if module.startswith("tests."):
                assert not last.startswith("test_"), f"{relative} imports {module}"


def test_test_modules_have_unique_names() -> None:
    # Test folders are not packages: two test files with one name cannot both be collected.
    names = [p.name for p in (repo_root() / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
