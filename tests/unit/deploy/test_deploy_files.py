"""deploy/'s container and machine files, checked without a container engine.

hadolint lints the Dockerfile; the compose file is validated against the compose
specification's JSON Schema (check-jsonschema's copy) and read for what it starts;
systemd-analyze verifies the units (with this checkout's venv in place of /opt/crieur).
Every module they start exists here: the integration tests in tests/integration/deploy/
start the same `python -m services.<name>` entry points with the production settings.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings
from ruamel.yaml import YAML

from crieur.http_limits import HttpLimits
from crieur.provision import ProvisionSettings
from crieur.settings import CommonSettings
from docs.gen_settings import env_names
from services.notices import attachments
from services.notices.settings import NoticesSettings
from tests.helpers import repo_root

DEPLOY = repo_root() / "deploy"
BIN = Path(sys.executable).parent
# On their own branches when this was written; present once merged.
ELSEWHERE = {"services.push", "services.sms"}


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          **kwargs)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_hadolint_passes_the_dockerfile() -> None:
    done = run([str(BIN / "hadolint"), str(DEPLOY / "Dockerfile")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_copies_what_exists_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (repo_root() / path).exists(), path
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "CRIEUR_ENSURE_STREAMS=false" in text


def test_the_compose_file_follows_the_compose_specification() -> None:
    done = run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                str(DEPLOY / "compose.yaml")])
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_starts_provisioning_first_and_every_service_with_its_own_user() -> None:
    services = compose()["services"]
    assert services["nats"]["command"] == ["-c", "/etc/crieur/nats/nats-server.conf"]
    assert services["provision"]["command"] == ["services.notices.cli", "provision"]
    for name, service in services.items():
        if name in ("nats", "provision", "proxy"):
            continue
        assert service["command"] == [f"services.{name}"]
        assert service["depends_on"]["provision"]["condition"] == (
            "service_completed_successfully")
        assert service["environment"]["CRIEUR_ENSURE_STREAMS"] == "false"
        # The only replies its NATS user may read (deploy/nats/auth.conf).
        assert service["environment"]["CRIEUR_NATS_INBOX_PREFIX"] == f"_INBOX_{name}"
        assert f'"_INBOX_{name}.>"' in (DEPLOY / "nats" / "auth.conf").read_text()
        assert service["env_file"] == ["env/common.env", f"env/{name}.env"]
        example = (DEPLOY / "env" / f"{name}.env.example").read_text()
        assert f"tls://{name}:<its password>" in example
    for secret in compose()["secrets"].values():
        assert secret["file"].startswith("./secrets/")


# The secrets each service is given, as files named after their settings.
SECRETS = {"provision": {"CRIEUR_NATS_URL"}, "notices": {"CRIEUR_NATS_URL"},
           "panel": {"CRIEUR_NATS_URL"}, "push": {"CRIEUR_NATS_URL"},
           "email": {"CRIEUR_NATS_URL", "CRIEUR_EMAIL_SECRET_KEY"},
           "sms": {"CRIEUR_NATS_URL", "CRIEUR_SMS_SECRET_KEY"}}


def test_compose_gives_each_service_its_own_secrets_and_no_other() -> None:
    """Issue 25: no service sees another's NATS password or keys, in files or variables."""
    spec = compose()
    services = spec["services"]
    for name, wanted in SECRETS.items():
        service = services[name]
        given = {s["target"]: s["source"] for s in service["secrets"] if isinstance(s, dict)}
        assert set(given) == wanted, name
        for target, source in given.items():
            # Its own file, under its own folder.
            assert source.startswith(f"{name}-"), source
            assert spec["secrets"][source]["file"] == (
                f"./secrets/{name}/{target.removeprefix('CRIEUR_')}")
        assert service["environment"]["CREDENTIALS_DIRECTORY"] == "/run/secrets"
        # No secret among its variables, nor in its env file's example.
        example = (DEPLOY / "env" / f"{name}.env.example").read_text()
        for target in wanted:
            assert target not in service["environment"]
            assert f"\n{target}=" not in "\n" + example, (name, target)
    # Every service's secret goes to that service alone.
    owners: dict[str, list[str]] = {}
    for name, service in services.items():
        for secret in service.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            owners.setdefault(source, []).append(name)
    assert all(len(names) == 1 for source, names in owners.items() if source != "ca.pem"), (
        owners)
    assert owners["server.key"] == ["nats"]


def unit_lines(name: str) -> list[str]:
    return (DEPLOY / "systemd" / name).read_text().splitlines()


def test_units_give_each_service_its_own_unix_user_data_and_credentials() -> None:
    """Issue 25: one Unix user per service, its own data directory, its own secrets."""
    lines = unit_lines("crieur@.service")
    for wanted in ("DynamicUser=yes", "User=crieur-%i", "StateDirectory=crieur/%i",
                   "StateDirectoryMode=0700",
                   "LoadCredential=CRIEUR:/etc/crieur/credentials/%i"):
        assert wanted in lines, wanted
    assert any(line.startswith("Environment=") and "CRIEUR_DATA_DIR=/var/lib/crieur/%i " in line
               for line in lines)
    # Nothing shared: no common user or group, no directory every service writes.
    assert not any(line.startswith(("Group=", "ReadWritePaths=", "SupplementaryGroups="))
                   for line in lines)
    assert "User=crieur" not in lines
    provision = unit_lines("crieur-provision.service")
    assert "DynamicUser=yes" in provision
    assert "LoadCredential=CRIEUR:/etc/crieur/credentials/provision" in provision
    # nats-server keeps its store (every subscriber) in a directory of its own, 0700.
    nats = unit_lines("crieur-nats.service")
    assert "StateDirectory=crieur/nats" in nats and "StateDirectoryMode=0700" in nats
    assert "NATS_STORE_DIR=/var/lib/crieur/nats" in (
        DEPLOY / "env" / "nats.env.example").read_text()
    # The services' environment files carry no secret any more.
    for name in ("notices", "panel", "email", "push", "sms", "provision"):
        text = (DEPLOY / "env" / f"{name}.env.example").read_text()
        assert not re.search(r"^CRIEUR_(NATS_URL|\w*SECRET\w*|\w*PASSWORD)=", text, re.M), name


def modules_started() -> set[str]:
    found = {f"services.{name}" for name in compose()["services"]
             if name not in ("nats", "provision", "proxy")}
    target = configparser.ConfigParser(strict=False)
    target.read(DEPLOY / "systemd" / "crieur.target")
    wants = target["Unit"]["Wants"].split()
    found |= {"services." + w.removeprefix("crieur@").removesuffix(".service") for w in wants}
    return found | {"services.notices.cli"}


def test_every_module_they_start_exists() -> None:
    missing = []
    for module in sorted(modules_started()):
        main = module if module.endswith(".cli") else module + ".__main__"
        if importlib.util.find_spec(module.split(".")[0] + "." + module.split(".")[1]) is None:
            if module in ELSEWHERE:
                continue
            missing.append(module)
        elif importlib.util.find_spec(main) is None:
            missing.append(main)
    assert missing == []


def test_the_crieur_command_has_the_provision_step() -> None:
    done = run([sys.executable, "-m", "services.notices.cli", "provision", "--help"],
               cwd=repo_root())
    assert done.returncode == 0, done.stderr
    assert "--replicas" in done.stdout


def units_here(folder: Path) -> list[Path]:
    """The units, with this checkout's venv where production has /opt/crieur."""
    for unit in (DEPLOY / "systemd").iterdir():
        text = unit.read_text().replace("/opt/crieur/bin/", f"{BIN}/")
        (folder / unit.name).write_text(text)
    return [folder / "crieur-nats.service", folder / "crieur-provision.service",
            *(folder / f"crieur@{name}.service" for name in ("notices", "panel", "email")),
            folder / "crieur.target"]


def test_systemd_units_verify(tmp_path: Path) -> None:
    units = units_here(tmp_path)
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        done = run([analyze, "verify", "--man=no", *map(str, units)])
        # It exits 0 on unknown keys and bad values, and says so: any word is a failure.
        assert done.returncode == 0 and done.stdout + done.stderr == "", (
            done.stdout + done.stderr)
        return
    # No systemd here: read them at least, and check what they run exists.
    for unit in (tmp_path / "crieur-nats.service", tmp_path / "crieur@.service",
                 tmp_path / "crieur-provision.service"):
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.read(unit)
        assert {"Unit", "Service", "Install"} <= set(parsed.sections())
        command = parsed["Service"]["ExecStart"].split()[0]
        assert Path(command).exists(), command


def test_units_run_each_service_as_its_own_user_after_provisioning() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "crieur@.service")
    assert unit["Service"]["ExecStart"] == "/opt/crieur/bin/python -m services.%i"
    assert "crieur-provision.service" in unit["Unit"]["After"]
    # Environment= may repeat (configparser keeps only the last): read every line.
    environment = " ".join(
        line.removeprefix("Environment=")
        for line in (DEPLOY / "systemd" / "crieur@.service").read_text().splitlines()
        if line.startswith("Environment="))
    assert "CRIEUR_ENSURE_STREAMS=false" in environment
    assert "CRIEUR_NATS_INBOX_PREFIX=_INBOX_%i" in environment
    nats = configparser.ConfigParser(strict=False, interpolation=None)
    nats.read(DEPLOY / "systemd" / "crieur-nats.service")
    assert nats["Service"]["ExecStart"].endswith("-c /etc/crieur/nats/nats-server.conf")
    assert (DEPLOY / "nats" / "nats-server.conf").exists()


@pytest.mark.parametrize("config", ["nats-server.conf", "cluster.conf"])
def test_nats_configs_parse_with_an_operators_environment(config: str, tmp_path: Path) -> None:
    """`nats-server -t` on each config, with the variables of deploy/env/nats.env.example."""
    import trustme

    from crieur.nats_server import binary

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cert = ca.issue_cert("nats")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))

    env: dict[str, str] = {}
    for line in (DEPLOY / "env" / "nats.env.example").read_text().splitlines():
        line = line.removeprefix("# ") if line.startswith("# NATS_") else line
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    # The example's paths, pointed at files the test made.
    env |= {"NATS_TLS_CERT": str(tmp_path / "server.pem"),
            "NATS_TLS_KEY": str(tmp_path / "server.pem"), "NATS_TLS_CA": str(tmp_path / "ca.pem")}
    done = run([binary(), "-c", str(DEPLOY / "nats" / config), "-t"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# Each service's HTTP port: its variable, and where its default is set.
HTTP_PORTS = {
    "CRIEUR_HTTP_PORT": ("services.notices.settings", "NoticesSettings", "http_port"),
    "CRIEUR_PANEL_HTTP_PORT": ("services.panel.settings", "PanelSettings", "panel_http_port"),
    "CRIEUR_EMAIL_HTTP_PORT": ("services.email.settings", "EmailSettings", "email_http_port"),
    "CRIEUR_PUSH_HTTP_PORT": ("services.push.settings", "PushSettings", "push_http_port"),
    "CRIEUR_SMS_HTTP_PORT": ("services.sms.settings", "SmsSettings", "sms_http_port"),
    "CRIEUR_WEBPUSH_HTTP_PORT": ("services.webpush.settings", "WebpushSettings",
                                 "webpush_http_port"),
}
# How the docs name each service next to its port.
DOC_NAMES = {"notices": "CRIEUR_HTTP_PORT", "panel": "CRIEUR_PANEL_HTTP_PORT",
             "email": "CRIEUR_EMAIL_HTTP_PORT", "push": "CRIEUR_PUSH_HTTP_PORT",
             "SMS": "CRIEUR_SMS_HTTP_PORT", "webpush": "CRIEUR_WEBPUSH_HTTP_PORT"}


def port_default(variable: str) -> int:
    module, cls, field = HTTP_PORTS[variable]
    default = getattr(importlib.import_module(module), cls).model_fields[field].default
    assert isinstance(default, int)
    return default


def said_ports() -> list[tuple[str, str, int]]:
    """(where, variable, port) for every HTTP port the deploy files and the docs give."""
    said = []
    for example in sorted((DEPLOY / "env").glob("*.env.example")):
        for variable, value in re.findall(r"^(CRIEUR_\w*HTTP_PORT)=(\d+)$",
                                          example.read_text(), re.M):
            said.append((example.name, variable, int(value)))
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        for variable, value in environment.items():
            if variable in HTTP_PORTS:
                said.append((f"compose {name}", variable, int(value)))
                published = [int(p.rsplit(":", 1)[1]) for p in service.get("ports", [])]
                said += [(f"compose {name} ports", variable, p) for p in published]
                check = " ".join(service.get("healthcheck", {}).get("test", []))
                said += [(f"compose {name} healthcheck", variable, int(p))
                         for p in re.findall(r"//127\.0\.0\.1:(\d+)/", check)]
    docs = repo_root() / "docs"
    deployment = (docs / "operations" / "deployment.md").read_text()
    monitoring = deployment.split("## Monitoring", 1)[1][:800]
    for name, value in re.findall(r"\b(notices|panel|push|email|SMS|webpush) (\d{4})\b", monitoring):
        said.append(("docs/operations/deployment.md Monitoring", DOC_NAMES[name], int(value)))
    for page in sorted(docs.rglob("*.md")):
        for variable, value in re.findall(r"`(CRIEUR_\w*HTTP_PORT)` (\d{4})\b", page.read_text()):
            said.append((f"docs/{page.relative_to(docs)}", variable, int(value)))
        # The tables' rows: `| `CRIEUR_X_HTTP_HOST`, `CRIEUR_X_HTTP_PORT` | `host`, `port` |`.
        for variable, value in re.findall(
                r"^\| (?:`CRIEUR_\w*HTTP_HOST`, )?`(CRIEUR_\w*HTTP_PORT)` \| "
                r"(?:`[^`]*`, )?`(\d+)`", page.read_text(), re.M):
            said.append((f"docs/{page.relative_to(docs)} table", variable, int(value)))
    launcher = importlib.import_module("crieur.village")
    said += [("crieur/village.py", s.port_var, s.default_port) for s in launcher.SERVICES
             if s.port_var in HTTP_PORTS]
    return said


def test_every_file_gives_each_service_the_port_its_settings_default_to() -> None:
    said = said_ports()
    # Each source is read, so a format change cannot make this test pass on nothing.
    sources = {where.split(" ")[0] for where, _, _ in said}
    assert {"email.env.example", "compose", "docs/operations/deployment.md",
            "docs/operations/metrics.md", "crieur/village.py"} <= sources, sources
    kinds = {where for where, _, _ in said}
    assert {"compose notices healthcheck", "docs/channels/email.md table",
            "docs/operations/configuration.md table"} <= kinds, kinds
    assert {v for _, v, _ in said} == set(HTTP_PORTS)
    wrong = [(where, variable, port, port_default(variable)) for where, variable, port in said
             if port != port_default(variable)]
    assert wrong == [], "(where, variable, says, settings default)"


# -- the reverse proxy (issue 25) ---------------------------------------------------------

NGINX_CONF = DEPLOY / "nginx" / "crieur.conf"


def test_only_the_reverse_proxy_is_published_and_it_serves_the_front_door() -> None:
    services = compose()["services"]
    proxy = services["proxy"]
    assert sorted(proxy["ports"]) == ["443:443", "80:80"]
    assert proxy["depends_on"]["notices"]["condition"] == "service_healthy"
    assert any(v.startswith("./nginx/crieur.conf:") for v in proxy["volumes"])
    # uvicorn is never exposed directly: the front door is reached through the proxy only,
    # and any other HTTP port is bound to the host's loopback.
    assert "ports" not in services["notices"]
    for name, service in services.items():
        if name != "proxy":
            assert all(p.startswith("127.0.0.1:") for p in service.get("ports", [])), name
    assert "server notices:8080;" in NGINX_CONF.read_text()


def test_the_proxy_bounds_slow_and_heavy_clients() -> None:
    text = NGINX_CONF.read_text()
    directives = dict(re.findall(r"^\s*(\w+)\s+([^;{]+);", text, re.M))
    assert directives["client_header_timeout"] == "10s"
    assert directives["client_body_timeout"] == "10s"
    # Room for the largest upload the front door takes (a phone's photo, reduced after),
    # with the form's other fields: the proxy must not refuse what the service accepts.
    cap = int(directives["client_max_body_size"].removesuffix("m")) * 1024 * 1024
    assert cap >= NoticesSettings().attachment_max_bytes + attachments.FORM_MARGIN
    # Streamed to the front door, whose guard refuses an anonymous large body on its headers.
    assert directives["proxy_request_buffering"] == "off"
    assert directives["limit_conn"].startswith("crieur_conn ")
    assert directives["limit_req"].startswith("zone=crieur_req ")
    assert re.search(r"listen 443 ssl", text)


def test_nginx_accepts_the_proxy_config(tmp_path: Path) -> None:
    """`nginx -t` on deploy/nginx/crieur.conf, with a test certificate for the site."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if nginx is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed (apt-get install nginx-light); CI needs it")
        pytest.skip("nginx is not installed here (apt-get install nginx-light)")
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("crieur.example")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "site.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "site.key"))
    site = (NGINX_CONF.read_text().replace("/run/secrets/", f"{tmp_path}/")
            .replace("server notices:8080;", "server 127.0.0.1:8080;"))
    (tmp_path / "crieur.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/crieur.conf;\n}}\n")
    done = run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
    assert done.returncode == 0, done.stdout + done.stderr


# -- every setting in its env example (issue 26) ------------------------------------------

# Read from a file of the service's credentials (docs/operations/deployment.md, "Secrets"):
# its example names the file in a comment and never sets it.
SECRET_SETTINGS = {
    "CRIEUR_NATS_URL", "CRIEUR_SMTP_PASSWORD", "CRIEUR_EMAIL_SECRET_KEY",
    "CRIEUR_EMAIL_LINK_KEY", "CRIEUR_SMS_SECRET_KEY", "CRIEUR_SMS_WEBHOOK_SECRET",
    "CRIEUR_SMS_BREVO_API_KEY", "CRIEUR_SMS_OVH_APPLICATION_KEY",
    "CRIEUR_SMS_OVH_APPLICATION_SECRET", "CRIEUR_SMS_OVH_CONSUMER_KEY"}
# The front door's address: every class inherits it from CommonSettings, but only
# services.notices serves on it (the others have CRIEUR_<NAME>_HTTP_PORT).
FRONT_DOOR = {"CRIEUR_HTTP_HOST", "CRIEUR_HTTP_PORT"}
# The services systemd starts as crieur@<name> (common.env, then <name>.env), and their class.
UNIT_SERVICES = {"notices": ("services.notices.settings", "NoticesSettings"),
                 "panel": ("services.panel.settings", "PanelSettings"),
                 "email": ("services.email.settings", "EmailSettings"),
                 "push": ("services.push.settings", "PushSettings"),
                 "sms": ("services.sms.settings", "SmsSettings")}


def fields_of(cls: type[BaseSettings]) -> list[list[str]]:
    """Each field's variables (several when it has aliases: GOOGLE_APPLICATION_CREDENTIALS)."""
    return [env_names(cls, name, info) for name, info in cls.model_fields.items()]


def named_in(example: str) -> set[str]:
    """The variables an example sets or shows with its default (`# CRIEUR_X=...`)."""
    text = (DEPLOY / "env" / example).read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))


def missing_from(example: str, fields: list[list[str]], shared: set[str]) -> list[str]:
    text = (DEPLOY / "env" / example).read_text()
    named = named_in(example) | shared
    missing = []
    for names in fields:
        if names[0] in SECRET_SETTINGS:
            # Told as the file that holds it, never set.
            if not re.search(rf"(?<![A-Z0-9]){names[0].removeprefix('CRIEUR_')}\b", text):
                missing.append(names[0])
        elif not named & set(names):
            missing.append(names[0])
    return missing


def shared_settings() -> list[list[str]]:
    return [names for cls in (CommonSettings, HttpLimits) for names in fields_of(cls)
            if names[0] not in FRONT_DOOR]


def test_every_setting_of_a_service_is_in_its_env_example_or_the_common_one() -> None:
    common = named_in("common.env.example")
    assert missing_from("common.env.example", shared_settings(), set()) == []
    for name, (module, cls_name) in UNIT_SERVICES.items():
        cls = getattr(importlib.import_module(module), cls_name)
        fields = [names for names in fields_of(cls)
                  if names[0] not in FRONT_DOOR or name == "notices"]
        assert len(fields) > 10, name
        assert missing_from(f"{name}.env.example", fields, common) == [], name
        # And nothing it does not read (a stale or misspelt name).
        known = {n for names in fields_of(cls) for n in names} | {
            n for names in fields_of(HttpLimits) for n in names}
        stale = {n for n in named_in(f"{name}.env.example") if n.startswith("CRIEUR_")} - known
        assert stale == set(), name
    provision = fields_of(ProvisionSettings)
    assert missing_from("provision.env.example", provision, set()) == []


def test_the_common_example_holds_only_what_every_service_shares() -> None:
    shared = {n for names in shared_settings() for n in names}
    assert named_in("common.env.example") - shared == {"SSL_CERT_FILE"}
    # What the unit sets per service (crieur@.service) a common.env would override for all
    # (EnvironmentFile= wins over Environment=): shown there, never set.
    text = (DEPLOY / "env" / "common.env.example").read_text()
    for line in unit_lines("crieur@.service"):
        if line.startswith("Environment="):
            for variable in re.findall(r"(CRIEUR_\w+)=", line):
                assert not re.search(rf"^{variable}=", text, re.M), variable

