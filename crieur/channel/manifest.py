"""A channel declared once: what the village, deploy/ and the contracts must agree with.

Each channel has `services/<channel>/manifest.py` with one `MANIFEST`; its `__main__.py`
calls `main(MANIFEST)`. tests/unit/kit/test_manifests.py fails when the launcher's
`SERVICES` (crieur.village), the NATS users (deploy/nats/auth.conf), compose, the env
examples, the `Channel` enum or the previews disagree with a manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from crieur.channel.service import ChannelService, create_app
from crieur.channel.settings import ChannelSettings
from crieur.serve import configure_logging, serve
from crieur.settings import load
from schemas.deliveries import Channel
from schemas.streams import Bucket

# Seconds an HTTP request (only /healthz, /readyz, /metrics here) gets at a stop; the kit's
# drain is the lifespan's, bounded by CRIEUR_CHANNEL_DRAIN_S.
GRACE_S = 3


@dataclass(frozen=True)
class StandIn:
    """The sink's stand-in the village runs in place of the real one (crieur_dev.standins)."""

    name: str
    module: str
    port_env: str
    default_port: int


@dataclass(frozen=True)
class Manifest:
    channel: Channel
    # The settings' class and how the service is built from them.
    settings: type[ChannelSettings]
    service: Callable[[Any], ChannelService]
    # The HTTP port (/healthz, /readyz, /metrics) and its default, as the village runs it.
    port_env: str
    default_port: int
    # The KV buckets the channel owns (besides the kit's `sent`).
    buckets: tuple[Bucket, ...]
    # What the front door's preview gets from it (schemas.previews).
    preview: type[BaseModel]
    stand_in: StandIn | None = None

    @property
    def name(self) -> str:
        return str(self.channel)

    @property
    def module(self) -> str:
        return f"services.{self.channel}"

    @property
    def nats_user(self) -> str:
        """Its user in deploy/nats/auth.conf (and NATS_PASSWORD_<NAME>)."""
        return self.name

    @property
    def env_example(self) -> str:
        return f"deploy/env/{self.channel}.env.example"

    def address(self, settings: ChannelSettings) -> tuple[str, int]:
        fields = type(settings).model_fields
        host, port = f"{self.channel}_http_host", f"{self.channel}_http_port"
        assert host in fields and port in fields, f"{type(settings).__name__} lacks {port}"
        return getattr(settings, host), getattr(settings, port)


def main(manifest: Manifest) -> None:
    """`python -m services.<channel>`: settings refused at start-up in one readable message,
    our logging, then the shell until SIGTERM."""
    settings = load(manifest.settings, manifest.name)
    configure_logging(settings)
    host, port = manifest.address(settings)
    # uvloop: the sends' many small socket reads and writes cost less CPU on libuv.
    # serve() settles the heap once the modules and the app are built.
    serve(create_app(manifest.service(settings)), host, port, grace_s=GRACE_S, loop="uvloop")
