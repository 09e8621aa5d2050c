"""JetStream streams and KV buckets: the definitions, in one place.

Every service ensures, at start-up and idempotently, the ones it owns and the shared ones it
writes to (`crieur.bus.ensure_all`), never one it only reads; in production a provisioning
step with its own NATS user does it instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from schemas import subjects

DAY = 24 * 3600.0
MIB = 1024**2
GIB = 1024**3

# A stream's definition carries its version in its metadata: bump it with any change of
# settings, so an older build never brings a stream back to its own, older definition.
CONFIG_VERSION_KEY = "crieur_config"


def _version(n: int) -> dict[str, str]:
    return {CONFIG_VERSION_KEY: str(n)}


# Stream names, typed as plain str (StreamConfig.name is Optional).
NOTICES_STREAM = "NOTICES"
DELIVERIES_STREAM = "DELIVERIES"
DEADLETTERS_STREAM = "DEADLETTERS"

NOTICES = StreamConfig(
    name=NOTICES_STREAM,
    metadata=_version(1),
    description="Every event of every notice; the last message of a subject is its current state",
    subjects=[subjects.NOTICES],
    storage=StorageType.FILE,
    # A notice's whole history is kept: it is the village's public record.
    max_age=0,
    # Wide enough that a scheduled publication retried after a long outage is still
    # recognised as a duplicate by its Nats-Msg-Id.
    duplicate_window=DAY,
    allow_direct=True,
    discard=DiscardPolicy.OLD,
)

DELIVERIES = StreamConfig(
    name=DELIVERIES_STREAM,
    metadata=_version(2),
    description="What each channel did with each notice (sent, failed, shown...)",
    subjects=[subjects.DELIVERIES],
    storage=StorageType.FILE,
    max_age=90 * DAY,
    # A ceiling on the disk whatever the village's size (about 20 million reports): the
    # oldest reports go first, the reach of recent notices stays.
    max_bytes=8 * GIB,
    discard=DiscardPolicy.OLD,
    duplicate_window=120.0,
    allow_direct=True,
)

DEADLETTERS = StreamConfig(
    name=DEADLETTERS_STREAM,
    metadata=_version(2),
    description="Messages a service could not handle, with the reason (schemas.deadletters)",
    subjects=[subjects.DEADLETTERS],
    storage=StorageType.FILE,
    # Long enough for an operator back from holidays to find and replay them.
    max_age=90 * DAY,
    # A poison storm must not fill the disk; the oldest letters go first.
    max_bytes=1 * GIB,
    discard=DiscardPolicy.OLD,
    duplicate_window=DAY,
    allow_direct=True,
)

STREAMS: tuple[StreamConfig, ...] = (NOTICES, DELIVERIES, DEADLETTERS)


@dataclass(frozen=True)
class Bucket:
    name: str
    description: str
    ttl: float = 0.0
    history: int = 1
    # Reads answered by any replica without a leader round trip (hot-path lookups).
    direct: bool = False
    # 0: no limit. Past it NATS refuses new values (a 507 from the channels' HTTP bridge);
    # deletes and purges still go through, so nobody is kept against their will.
    max_bytes: int = 0

    def config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self.name,
            description=self.description,
            ttl=self.ttl or None,
            history=self.history,
            max_bytes=self.max_bytes or None,
            storage=StorageType.FILE,
            direct=self.direct or None,
        )


COMMUNES = Bucket("communes", "Commune registry, key = INSEE code")
STAFF = Bucket("staff", "Staff tokens, key = SHA-256 of the token; value says which communes")
IDEMPOTENCY = Bucket("idempotency", "HTTP Idempotency-Key -> notice id, kept 24 hours", ttl=DAY)
SCHEDULE = Bucket("schedule", "Notices waiting for their publish_at, key = notice id")
# Staff browser sessions (`s.<hash of the cookie>`) and failed sign-ins (`f.<login>`); a key
# lives 12 hours after its last write, which is also a session's longest life.
STAFF_SESSIONS = Bucket("staff_sessions", "Staff sign-in sessions and failed sign-ins",
                        ttl=12 * 3600)

# Groups of communes (`g.<group>`) and their publications (`b.<broadcast id>`: each
# commune's copy); services/notices/groups.py.
GROUPS = Bucket("groups", "Groups of communes and their broadcasts")
# Official alerts read from CAP feeds (`a.<SHA-256 of the CAP identifier>`: what each became),
# so that one identifier is never proposed twice; services/notices/capfeed.py.
CAP_ALERTS = Bucket("cap_alerts", "Official CAP alerts read, and the drafts each became")

# Withdrawals asked on the staff pages, held a minute so that they can be undone
# (`w.<notice id>`); services/notices/undo.py. A key outlives its minute by far only if
# every front door is down; the TTL then drops it rather than withdraw a day late.
WITHDRAWALS = Bucket("withdrawals", "Withdrawals held a minute so that staff can undo them",
                     ttl=24 * 3600)

BUCKETS: tuple[Bucket, ...] = (COMMUNES, STAFF, IDEMPOTENCY, SCHEDULE, STAFF_SESSIONS, GROUPS,
                               CAP_ALERTS, WITHDRAWALS)


# The channel kit's own: a work queue of one job per recipient, and what was sent.
# They are ensured by the kit (crieur.channel), not by every service.
JOBS_STREAM = "JOBS"

JOBS = StreamConfig(
    name=JOBS_STREAM,
    metadata=_version(2),
    description="Channel jobs, one per notice event and recipient (schemas.jobs); gone once done",
    subjects=[subjects.JOBS],
    # A job is removed when its worker acks it: the queue holds only what is left to do.
    retention=RetentionPolicy.WORK_QUEUE,
    # Jobs survive a nats-server restart (file, not memory).
    storage=StorageType.FILE,
    # A job nobody took in a week is moot (the notice has long gone out by other channels).
    max_age=7 * DAY,
    # A fan-out that crashed is redone within minutes; its jobs' Nats-Msg-Id (Job.key) then
    # match and are stored once. Beyond the window the sent records still stop a resend.
    duplicate_window=3600.0,
    # Never drop a queued job to make room: refuse the new one (the fan-out retries).
    discard=DiscardPolicy.NEW,
    # Room for millions of queued jobs (~500 bytes each); a full queue refuses, as above.
    max_bytes=4 * GIB,
)

CHANNEL_STREAMS: tuple[StreamConfig, ...] = (JOBS,)

# One record per job the sink accepted, key `<channel>.<notice_id>.<version>.<kind>.<recipient>`:
# checked before each send, and read to find who got a notice (corrections, withdrawals).
SENT = Bucket(
    "sent",
    "What each channel sent: one key per job the sink accepted",
    # As long as a notice may still be corrected or withdrawn in practice.
    ttl=400 * DAY,
    direct=True,
)


# The NATS object store `attachments` (files staff attach to notices, services/notices/
# attachments.py): an object store is a stream named OBJ_<bucket>, defined here as nats-py
# would create it, so `crieur provision` makes it in production like any other stream.
ATTACHMENTS_BUCKET = "attachments"
ATTACHMENTS = StreamConfig(
    name=f"OBJ_{ATTACHMENTS_BUCKET}",
    metadata=_version(1),
    description="Files staff attach to notices (images, PDF), one object per attachment",
    subjects=[f"$O.{ATTACHMENTS_BUCKET}.C.>", f"$O.{ATTACHMENTS_BUCKET}.M.>"],
    storage=StorageType.FILE,
    # A decree stays downloadable as long as the notice that links it is on record.
    max_age=0,
    # A ceiling on the disk, whatever the uploads; a full store refuses the new file.
    max_bytes=4 * GIB,
    discard=DiscardPolicy.NEW,
    allow_rollup_hdrs=True,
    allow_direct=True,
)
