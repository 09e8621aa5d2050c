"""`crieur provision`: create every stream and bucket defined in `schemas/`, with its own user.

In production the services run with CRIEUR_ENSURE_STREAMS=false and NATS users that may
not create, update or delete a stream (deploy/nats/auth.conf): this step, run by an
operator with the `provision` user, is the only one that shapes JetStream. Definitions are
found, not listed: every `StreamConfig` and `Bucket` at the top level of a module of the
`schemas` package is provisioned, so a new stream or bucket joins by being defined there.
Durable consumers are not made here: their settings (ack wait, pending limits) are their
service's settings, and each service's user may create only its own (by durable name).

The `provision` user holds the whole JetStream API: it is an administrator, able to read
every subscriber and staff token. Its password is this step's credential alone (systemd's
LoadCredential=, compose's secret), never a service's (docs/operations/deployment.md, "Secrets").
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from pydantic_settings import BaseSettings, SettingsConfigDict

import schemas
from crieur.bus import TRY_ONCE, config_version, servers
from crieur.settings import CommonSettings
from schemas.streams import Bucket


class ProvisionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CRIEUR_", extra="ignore")

    # 1 on one machine; 3 on a 3-node cluster (each stream and bucket on every node).
    nats_replicas: int = 1


@dataclass
class Definitions:
    streams: list[StreamConfig] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)


def definitions() -> Definitions:
    """Every stream and bucket defined at the top level of a `schemas` module, once each."""
    found = Definitions()
    streams: dict[str, StreamConfig] = {}
    buckets: dict[str, Bucket] = {}
    for module_info in sorted(pkgutil.iter_modules(schemas.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"schemas.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, StreamConfig) and value.name:
                streams.setdefault(value.name, value)
            elif isinstance(value, Bucket):
                buckets.setdefault(value.name, value)
    found.streams = [streams[n] for n in sorted(streams)]
    found.buckets = [buckets[n] for n in sorted(buckets)]
    return found


def _replicas(info_config: StreamConfig) -> int:
    return info_config.num_replicas or 1


async def provision_stream(js: JetStreamContext, config: StreamConfig, replicas: int) -> str:
    """Create the stream, or bring it to `config` and `replicas`; says what it did."""
    wanted = config.evolve(num_replicas=replicas)
    name = config.name or ""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config=wanted)
        return f"stream {name}: created (replicas {replicas})"
    ours, theirs = config_version(config), config_version(info.config)
    if theirs > ours:
        # A newer build provisioned it: its definition wins; only the replica count is ours.
        if _replicas(info.config) == replicas:
            return f"stream {name}: newer definition (v{theirs}) kept"
        await js.update_stream(config=info.config.evolve(num_replicas=replicas))
        return f"stream {name}: newer definition (v{theirs}) kept, replicas {replicas}"
    if theirs == ours and _replicas(info.config) == replicas:
        return f"stream {name}: up to date (v{ours}, replicas {replicas})"
    await js.update_stream(config=wanted)
    return f"stream {name}: updated to v{ours}, replicas {replicas}"


async def provision_bucket(js: JetStreamContext, bucket: Bucket, replicas: int) -> str:
    """Create the bucket; an existing one keeps its settings, except its replica count and
    its size limit (a bucket made before it had one gets it)."""
    stream = f"KV_{bucket.name}"
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.create_key_value(config=bucket.config().evolve(replicas=replicas))
        return f"bucket {bucket.name}: created (replicas {replicas})"
    max_bytes = bucket.max_bytes or -1
    if _replicas(info.config) == replicas and (info.config.max_bytes or -1) == max_bytes:
        return f"bucket {bucket.name}: exists (replicas {replicas})"
    await js.update_stream(config=info.config.evolve(num_replicas=replicas,
                                                     max_bytes=max_bytes))
    limit = f", at most {max_bytes} bytes" if max_bytes > 0 else ""
    return f"bucket {bucket.name}: replicas {replicas}{limit}"


async def provision(js: JetStreamContext, replicas: int, found: Definitions | None = None
                    ) -> list[str]:
    """Provision every definition of `schemas/`; returns one line per stream or bucket."""
    found = found or definitions()
    said = [await provision_stream(js, s, replicas) for s in found.streams]
    said += [await provision_bucket(js, b, replicas) for b in found.buckets]
    return said


async def run(args: argparse.Namespace) -> int:
    url = CommonSettings().nats_url
    replicas = args.replicas or ProvisionSettings().nats_replicas
    try:
        nc = await nats.connect(servers(url), name="crieur-provision", **TRY_ONCE)
    except (OSError, nats.errors.Error) as error:
        print(f"error: cannot reach NATS ({error}) (CRIEUR_NATS_URL)", file=sys.stderr)
        return 3
    try:
        for line in await provision(nc.jetstream(), replicas):
            print(line)
    except nats.errors.Error as error:
        # A permissions violation shows as a timeout: the user may not provision.
        print(f"error: provisioning failed ({error!r}); does this NATS user have the "
              "provisioning permissions (deploy/nats/auth.conf)?", file=sys.stderr)
        return 1
    finally:
        await nc.close()
    return 0


def add_parser(sub: Any) -> None:
    """Registers `crieur provision` on the `crieur` command's sub-parsers."""
    p = sub.add_parser("provision", help="create or update every stream and bucket "
                       "(production: with the provision user, before the services start)")
    p.add_argument("--replicas", type=int, default=0,
                   help="replicas of each stream and bucket (default: $CRIEUR_NATS_REPLICAS or 1)")
    p.set_defaults(run=run)
