"""nats-py's private attributes are read in crieur/natsx.py alone, next to the nats.py issue
that makes each one necessary: a nats-py upgrade is then checked in one file."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import repo_root

ADAPTER = "crieur/natsx.py"
SOURCE = ("crieur", "crieur_dev", "schemas", "services", "bench")
# Other libraries' private attributes, each read by the one module that adapts that library.
OTHER_ADAPTERS = {
    # firebase-admin: its FCM endpoints redirected to CRIEUR_FCM_URL (the version is pinned).
    "services/push/sender.py",
    # ovh: its endpoint set to the configured base URL, and its HTTP session closed.
    "services/sms/providers/ovh.py",
}
# A namedtuple's public methods start with an underscore.
PUBLIC = {"_replace", "_asdict", "_fields", "_make"}


def private_reads(source: str) -> list[str]:
    """`x._name` where x is not the object itself (self, cls), and getattr(x, "_name")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name, owner = node.attr, node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            name = node.args[1].value
        else:
            continue
        if name.startswith("_") and not name.startswith("__") and name not in PUBLIC:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def source_files() -> list[Path]:
    return sorted(p for top in SOURCE for p in (repo_root() / top).rglob("*.py"))


def test_only_the_adapters_read_a_library_s_private_attributes() -> None:
    offenders = {}
    for path in source_files():
        relative = str(path.relative_to(repo_root()))
        if relative == ADAPTER or relative in OTHER_ADAPTERS:
            continue
        if found := private_reads(path.read_text()):
            offenders[relative] = found
    assert offenders == {}, (
        f"private attributes read outside {ADAPTER} (move them there, with the nats.py "
        f"issue they work around): {offenders}")


def test_the_adapters_are_where_the_private_reads_are() -> None:
    # A stale exemption would let a file read privates unseen.
    for relative in (ADAPTER, *OTHER_ADAPTERS):
        assert private_reads((repo_root() / relative).read_text()), relative
    assert len(private_reads((repo_root() / ADAPTER).read_text())) >= 4


def test_the_scan_sees_every_way_of_reaching_in() -> None:
    flagged = private_reads(
        "kv._stream\nself._js._nc\ngetattr(js, '_nc')\nsetattr(kv, '_name', 'x')\n")
    assert len(flagged) == 4, flagged
    # The object's own attributes, dunders and a namedtuple's API are not another's privates.
    assert private_reads("self._js\ncls._cache\nx.__class__\nurl._replace(path='')\n") == []


def test_every_workaround_in_the_adapter_names_its_issue_or_says_none_was_found() -> None:
    text = (repo_root() / ADAPTER).read_text()
    doc = ast.get_docstring(ast.parse(text)) or ""
    bullets = doc.split("\n- ")[1:]
    assert len(bullets) >= 4
    for bullet in bullets:
        assert "nats-io/nats.py#" in bullet or "no nats.py issue found" in bullet, bullet
