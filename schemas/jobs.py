"""Jobs on the JOBS work queue: one notice event for one recipient of one channel.

A fan-out queues its jobs in groups (`JobGroup`: one bus message for up to
`CRIEUR_CHANNEL_GROUP_SIZE` recipients of the same event); a worker reads a message with
`read_jobs` and handles each job of it alone. A job that must come back on its own (a
retry, a hold) is queued again as a `Job`, with the attempts it had in `ATTEMPTS_HEADER`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from schemas.commune import Insee
from schemas.deliveries import Channel
from schemas.events import EventKind
from schemas.versions import NewerSchemaVersion, read_message

# Attempts a job had before it was queued again on its own (out of a group): a worker adds
# them to the message's own delivery count, so retries stay bounded.
ATTEMPTS_HEADER = "Crieur-Attempts"
# Recipients of one group at most (a message stays far below NATS's 1 MB).
MAX_GROUP = 1000


class Job(BaseModel):
    """What a channel's worker sends; the address is read at send time, never carried here.

    `recipient` is the channel's opaque subscriber id (a keyed hash, a topic...), so an
    unsubscribe wins over a job already queued, and no address sits in a stream.
    """

    # A bus message: read tolerantly (a newer planner may add fields).
    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    channel: Channel
    commune: Insee
    notice_id: str
    version: int = Field(ge=1)
    kind: EventKind
    recipient: str = Field(min_length=1, max_length=200)

    @property
    def key(self) -> str:
        """Idempotency key and `Nats-Msg-Id`: a crash while planning never makes two jobs."""
        return f"{self.notice_id}:{self.version}:{self.kind}:{self.channel}:{self.recipient}"


class JobGroup(BaseModel):
    """The jobs of one notice event for many recipients, in one bus message.

    One message per recipient cost the bus and both ends more than the sends of a fast
    sink (docs/benchmark.md). `schema_version` 2: a worker that reads only `Job` keeps a
    group as a dead letter (to replay after its upgrade) rather than send to one recipient.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 2
    channel: Channel
    commune: Insee
    notice_id: str
    version: int = Field(ge=1)
    kind: EventKind
    recipients: tuple[Annotated[str, StringConstraints(min_length=1, max_length=200)], ...] = (
        Field(min_length=1, max_length=MAX_GROUP))

    @property
    def key(self) -> str:
        """`Nats-Msg-Id`: the same recipients in the same order give the same key (a
        planner that starts again queues each group once); never a `Job.key`."""
        return group_key(f"{self.notice_id}:{self.version}:{self.kind}:{self.channel}:",
                         self.recipients)

    def jobs(self) -> list[Job]:
        """Each recipient's job."""
        fields = self.model_dump(exclude={"schema_version", "recipients"})
        # The group checked every field as Job does: no second validation per job.
        return [Job.model_construct(**fields, recipient=recipient)
                for recipient in self.recipients]


def group_key(prefix: str, recipients: Sequence[str]) -> str:
    """JobGroup.key from the part it shares with Job.key (up to the recipient) and the
    recipients, for a planner that renders groups without building each JobGroup."""
    digest = hashlib.blake2b("\n".join(recipients).encode(), digest_size=12)
    return f"{prefix}*{len(recipients)}*{digest.hexdigest()}"


def read_jobs(data: bytes | str) -> tuple[list[Job], bool]:
    """The jobs of a JOBS message, and whether it was a group.

    Raises pydantic.ValidationError if it is not a job, and
    NewerSchemaVersion for a contract newer than this build reads.
    """
    try:
        return [read_message(Job, data)], False
    except NewerSchemaVersion as newer:
        if newer.version != JobGroup.model_fields["schema_version"].default:
            raise
    return read_message(JobGroup, data).jobs(), True

