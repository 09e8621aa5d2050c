"""Each channel is declared once, in services/<channel>/manifest.py: the launcher, the NATS
users, compose, the env examples and the contracts must agree with it."""

from __future__ import annotations

import re
from importlib import import_module

import pytest
import yaml

from crieur.channel.consumers import fanout_consumer
from crieur.channel.lanes import Lane
from crieur.channel.manifest import Manifest
from crieur.village import SERVICES
from schemas.deliveries import Channel
from schemas.previews import PREVIEW_MODELS, PreviewChannels
from tests.helpers import repo_root

# The sign is a channel of its own kind (no kit, no residents): it has no manifest.
KIT_CHANNELS = [c for c in Channel if c is not Channel.PANEL]


def manifest(channel: Channel) -> Manifest:
    found = import_module(f"services.{channel}.manifest").MANIFEST
    assert isinstance(found, Manifest) and found.channel is channel
    return found


MANIFESTS = [manifest(c) for c in KIT_CHANNELS]
IDS = [m.name for m in MANIFESTS]


def test_every_kit_channel_of_the_enum_has_its_manifest() -> None:
    channels = {p.parent.name for p in (repo_root() / "services").glob("*/manifest.py")}
    assert channels == {str(c) for c in KIT_CHANNELS}


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_the_village_runs_the_channel_and_its_stand_in_as_declared(declared: Manifest) -> None:
    by_name = {s.name: s for s in SERVICES}
    service = by_name[declared.name]
    assert (service.module, service.port_var, service.default_port) == (
        declared.module, declared.port_env, declared.default_port)
    assert service.health_path == "/healthz"
    assert declared.stand_in is not None
    stand_in = by_name[declared.stand_in.name]
    assert (stand_in.module, stand_in.port_var, stand_in.default_port) == (
        declared.stand_in.module, declared.stand_in.port_env, declared.stand_in.default_port)
    # Started before the channel that sends to it.
    assert SERVICES.index(stand_in) < SERVICES.index(service)


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_the_port_setting_is_the_one_the_village_sets(declared: Manifest) -> None:
    fields = declared.settings.model_fields
    port = declared.port_env.removeprefix("CRIEUR_").lower()
    # What the shell serves on (Manifest.address): <channel>_http_host and _port.
    assert port == f"{declared.name}_http_port" and f"{declared.name}_http_host" in fields
    assert fields[port].default == declared.default_port


def nats_user(name: str) -> str:
    text = (repo_root() / "deploy/nats/auth.conf").read_text()
    start = text.index(f"user: {name}\n")
    end = text.find("user: ", start + 1)
    return text[start:end if end > 0 else len(text)]


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_its_nats_user_may_use_its_subjects_and_buckets(declared: Manifest) -> None:
    user = nats_user(declared.nats_user)
    assert f"$NATS_PASSWORD_{declared.nats_user.upper()}" in user
    for subject in (f"channels.{declared.name}.http", f"channels.{declared.name}.preview.*",
                    f"jobs.{declared.name}.>", f"deliveries.{declared.name}.>",
                    f"$KV.sent.{declared.name}.>", f"_INBOX_{declared.nats_user}.>"):
        assert f'"{subject}"' in user, subject
    for bucket in declared.buckets:
        assert f'"$KV.{bucket.name}.>"' in user, bucket.name


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_the_services_with_ephemerals_on_notices_may_not_name_its_fan_outs(
        declared: Manifest) -> None:
    """Issue 25: the front door and the sign create consumers by name on NOTICES, so each
    must be refused the names of this channel's durables there (nats-server matches a
    name as a whole token: no prefix can be allowed instead)."""
    for user in ("notices", "panel"):
        allowed, _, denied = nats_user(user).partition("deny: [")
        assert '"$JS.API.CONSUMER.CREATE.NOTICES.*"' in allowed
        assert '"$JS.API.CONSUMER.CREATE.NOTICES"' not in allowed
        for lane in Lane:
            name = fanout_consumer(declared.name, 30, lane).durable_name
            for subject in (f"$JS.API.CONSUMER.CREATE.NOTICES.{name}",
                            f"$JS.API.CONSUMER.CREATE.NOTICES.{name}.>"):
                assert f'"{subject}"' in denied, (user, subject)


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_compose_runs_it_with_its_env_file(declared: Manifest) -> None:
    compose = yaml.safe_load((repo_root() / "deploy/compose.yaml").read_text())
    service = compose["services"][declared.name]
    assert service["command"] == [declared.module]
    assert service["env_file"] == ["env/common.env", f"env/{declared.name}.env"]


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_its_env_example_names_only_its_settings(declared: Manifest) -> None:
    text = (repo_root() / declared.env_example).read_text()
    names = re.findall(r"^#?\s*CRIEUR_([A-Z0-9_]+)=", text, re.MULTILINE)
    fields = set(declared.settings.model_fields)
    assert [n for n in names if n.lower() not in fields] == []
    # It connects as its own NATS user; the URL, which holds its password, is a secret
    # file (deploy/: secrets per service), described in the example, never set there.
    assert "CRIEUR_NATS_URL=" not in text
    (user,) = re.findall(r"NATS_URL holds\s*\n#\s*tls://([a-z]+):", text)
    assert user == declared.nats_user


@pytest.mark.parametrize("declared", MANIFESTS, ids=IDS)
def test_the_previews_read_its_reply_as_declared(declared: Manifest) -> None:
    assert PREVIEW_MODELS[declared.name] is declared.preview
    assert declared.name in PreviewChannels.model_fields
