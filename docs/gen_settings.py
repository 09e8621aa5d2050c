"""Writes docs/operations/settings.md from the Settings classes: `python -m docs.gen_settings`.

One table per service: each variable, its default and the comment written above its
field (or its Field description). tests/unit/test_docs.py fails when the page is stale.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import json
import re
import textwrap
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

PAGE = Path(__file__).parent / "operations" / "settings.md"

# (title, module, class, what else that service reads), in the order of the page. Each
# table lists the fields a class adds; the settings it inherits are in their own table.
SECTIONS = [
    ("Every service", "crieur.settings", "CommonSettings", ""),
    ("Every service's HTTP port", "crieur.http_limits", "HttpLimits", ""),
    ("The front door (services/notices)", "services.notices.settings", "NoticesSettings",
     "Every service"),
    ("`crieur provision`", "crieur.provision", "ProvisionSettings", ""),
    ("The LED sign (services/panel)", "services.panel.settings", "PanelSettings",
     "Every service"),
    ("The channel kit (every channel)", "crieur.channel.settings", "ChannelSettings",
     "Every service"),
    ("Email (services/email)", "services.email.settings", "EmailSettings",
     "Every service, The channel kit"),
    ("Push (services/push)", "services.push.settings", "PushSettings",
     "Every service, The channel kit"),
    ("SMS (services/sms)", "services.sms.settings", "SmsSettings",
     "Every service, The channel kit"),
    ("Web Push (services/webpush)", "services.webpush.settings", "WebpushSettings",
     "Every service, The channel kit"),
]


def settings_class(module: str, name: str) -> type[BaseSettings]:
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type) and issubclass(cls, BaseSettings), (module, name)
    return cls


def comments(cls: type) -> dict[str, str]:
    """Each field's comment: the `#` lines right above it. A field without one shares the
    comment of the field before it when both names start alike (`smtp_rate_per_client`
    and `smtp_rate_per_address`, `sms_code_ttl_s` and `sms_code_attempts`)."""
    lines, _ = inspect.getsourcelines(cls)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    found: dict[str, str] = {}
    previous: tuple[str, str] | None = None  # (name, comment) of the field just before
    previous_end = body.body[0].lineno - 1 if body.body else 0
    for node in body.body:
        above: list[str] = []
        line = node.lineno - 2  # the 0-based index of the line above the node
        while line >= previous_end and lines[line].strip().startswith("#"):
            above.insert(0, lines[line].strip().lstrip("#").strip())
            line -= 1
        next_to_previous = node.lineno - 1 == previous_end
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            comment = " ".join(above)
            if not comment and previous and next_to_previous and stem(previous[0]) == stem(name):
                comment = previous[1]
            found[name] = comment
            previous = (name, comment)
        else:
            previous = None
        previous_end = node.end_lineno or node.lineno
    return found


def stem(name: str) -> str:
    return "_".join(name.split("_")[:2])


def hand_written() -> dict[str, str]:
    """Each variable's meaning in the pages' own tables (`| `CRIEUR_X` | default | meaning |`),
    for a field that has no comment in its class."""
    meanings: dict[str, str] = {}
    for page in sorted(PAGE.parent.parent.rglob("*.md")):
        if page == PAGE:
            continue
        for row in page.read_text().splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
            if len(cells) == 3 and cells[0].startswith("`"):
                for variable in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                    meanings.setdefault(variable, cells[2])
    return meanings


def env_names(cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [c for c in alias.choices if isinstance(c, str)]
    if isinstance(alias, str):
        return [alias]
    return [(str(cls.model_config.get("env_prefix", "")) + name).upper()]


def shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, tuple | list | dict):
        value = json.dumps(value, default=lambda v: v.value if isinstance(v, enum.Enum) else str(v))
    text = str(value)
    return f"`{text}`" if text else '`""` (empty)'


def default_of(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(cls: type[BaseSettings], pages: dict[str, str]) -> list[str]:
    own = inspect.get_annotations(cls)
    notes = comments(cls)
    rows = ["| variable | default | description |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        if name not in own:
            continue
        names = env_names(cls, name, field)
        variable = ", ".join(f"`{n}`" for n in names)
        description = cell(notes.get(name) or field.description or "")
        if not description and names[0] in pages:
            # Already a table cell: its pipes are escaped as they should stay.
            description = pages[names[0]]
        rows.append(f"| {variable} | {cell(shown(default_of(field)))} | {description} |")
    return rows


def render() -> str:
    out = [
        "# Settings reference",
        "",
        "<!-- Generated by `python -m docs.gen_settings` from the Settings classes: do not",
        "edit by hand. tests/unit/test_docs.py fails when this page is stale. -->",
        "",
        "Every setting is an environment variable. This page is generated from the classes",
        "that read them: the default is the class's, the description the comment above the",
        "field (for a field without one, the meaning its service's page gives). What a",
        "setting means for the operator, with the `make run` defaults, is told",
        "on each service's page ([configuration](configuration.md), [email](../channels/email.md),",
        "[push](../channels/push.md), [SMS](../channels/sms.md),",
        "[Web Push](../channels/webpush.md), [the sign](../sign.md),",
        "[the channel kit](../architecture.md#settings-of-the-channel-kit)).",
        "",
    ]
    pages = hand_written()
    for title, module, name, also in SECTIONS:
        cls = settings_class(module, name)
        out += [f"## {title}", "", f"`{module}.{name}`."
                + (f" Also reads: {also}." if also else ""), ""]
        out += table(cls, pages)
        out.append("")
    return "\n".join(out)


def main() -> None:
    PAGE.write_text(render())
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
