"""The kit's settings (CRIEUR_CHANNEL_*): every channel service's settings extend this class."""

from __future__ import annotations

from pydantic import Field

from crieur.settings import CommonSettings


class ChannelSettings(CommonSettings):
    """How a channel's worker pulls, retries and gives up; the defaults suit a village."""

    # Jobs per pull request: large enough that NATS round trips vanish behind the sends.
    channel_batch: int = Field(default=256, ge=1, le=10_000)
    # Recipients of one event queued in one JOBS message (schemas.jobs.JobGroup): a
    # message per recipient cost the bus and both ends more than a fast sink's sends
    # (docs/benchmark.md). 1 queues a message per recipient.
    channel_group_size: int = Field(default=64, ge=1, le=1000)
    # A job not acked (nor marked in progress) within this time is redelivered.
    channel_ack_wait_s: float = Field(default=30.0, gt=1.0)
    # Attempts of one job (transient failures) before it becomes a dead letter.
    channel_max_attempts: int = Field(default=8, ge=1, le=100)
    # Exponential backoff between attempts: base * 2**(attempt-1), capped.
    channel_backoff_s: float = Field(default=2.0, gt=0)
    channel_backoff_max_s: float = Field(default=300.0, gt=0)
    # Jobs published at once by the fan-out before waiting for their acks (memory bound).
    # (Counted in jobs, published in groups.)
    channel_fanout_window: int = Field(default=1000, ge=1, le=100_000)
    # Normal-lane events planned at once, one task per notice (order kept within a
    # notice): a notice published while a large one is planned is planned too (the
    # NOTICES durable's max_ack_pending). The alert lane plans one event at a time.
    channel_fanout_concurrency: int = Field(default=32, ge=1, le=1000)
    # Jobs the normal lane's planners keep queued ahead of the workers (not yet handed
    # out): each notice's planning waits for the queue to fall below this, then adds this
    # many, so notices being planned take turns and a new one starts behind a short
    # backlog (docs/architecture.md, "Lanes: alerts first"). 0 plans without waiting (FIFO
    # by planning).
    channel_fanout_ahead: int = Field(default=256, ge=0, le=1_000_000)
    # JOBS messages (a job or a group) handed out at once to all the workers of a channel
    # (JetStream max_ack_pending).
    channel_max_ack_pending: int = Field(default=2000, ge=1)
    # The same for the alert lane (crieur.channel.lanes), a window of its own: what the
    # normal lane holds (quiet hours, Retry-After, a paused sink) never fills it.
    channel_alert_max_ack_pending: int = Field(default=500, ge=1)
    # How long a sent record waits for others to be written with (crieur.channel.grouped):
    # fewer, larger writes to NATS; a process killed outright may resend this much.
    channel_record_linger_s: float = Field(default=0.05, ge=0, le=1.0)
    # On SIGTERM, how long in-flight sends may take to finish before the process goes.
    channel_drain_s: float = Field(default=20.0, gt=0)
