"""The subject map: every subject on the bus is spelled here and nowhere else."""

from __future__ import annotations

# notices.<commune>.<notice_id>: every event of one notice, so the last message of a
# subject is the notice's current state (DeliverLastPerSubject rebuilds a commune's notices).
NOTICES = "notices.>"

# deliveries.<channel>.<commune>: what each channel did with each notice.
DELIVERIES = "deliveries.>"

# jobs.<channel>.<commune>: the channel kit's work queue, one job per recipient (schemas.jobs);
# jobs.<channel>.<commune>.alert: the alert lane, jobs of `alerte` notices, taken first.
# The two lanes' filters (`channel_jobs`, `channel_alert_jobs`) never overlap: JOBS is a
# work queue, where each job belongs to one consumer.
JOBS = "jobs.>"

# deadletters.<service>: what a service could not handle, with the reason (schemas.deadletters).
DEADLETTERS = "deadletters.>"

# channels.<channel>.http: the front door forwards a channel's HTTP routes here (request-reply).
CHANNEL_HTTP = "channels.{channel}.http"

# channels.<channel>.preview.<commune>: a staff preview of a draft (request-reply,
# schemas.previews); a channel answers for every commune, a sign only for its own.
CHANNEL_PREVIEW = "channels.{channel}.preview.{commune}"


def notice(commune: str, notice_id: str) -> str:
    return f"notices.{commune}.{notice_id}"


def commune_notices(commune: str) -> str:
    return f"notices.{commune}.*"


def delivery(channel: str, commune: str) -> str:
    return f"deliveries.{channel}.{commune}"


def channel_http(channel: str) -> str:
    return CHANNEL_HTTP.format(channel=channel)


def channel_preview(channel: str, commune: str) -> str:
    return CHANNEL_PREVIEW.format(channel=channel, commune=commune)


def dead_letter(service: str) -> str:
    return f"deadletters.{service}"


def jobs(channel: str, commune: str, *, alert: bool = False) -> str:
    return f"jobs.{channel}.{commune}.alert" if alert else f"jobs.{channel}.{commune}"


def channel_jobs(channel: str) -> str:
    """The normal lane of a channel: one token after the channel, never an alert's."""
    return f"jobs.{channel}.*"


def channel_alert_jobs(channel: str) -> str:
    return f"jobs.{channel}.*.alert"
