"""Quiet hours (Paris time): how long a non-alert SMS must wait. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from schemas.notice import PARIS


def seconds_left(now: datetime, hours: tuple[time, time] | None) -> float:
    """0 outside the quiet hours, else the seconds until they end (DST-aware)."""
    if hours is None:
        return 0.0
    start, end = hours
    local = now.astimezone(PARIS)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= clock < end
    else:  # across midnight, e.g. 21:00-08:00
        quiet = clock >= start or clock < end
    if not quiet:
        return 0.0
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=PARIS)
    # In UTC: between two times of one zone Python subtracts wall clocks, and DST is lost.
    return max(0.0, (ends.astimezone(UTC) - now.astimezone(UTC)).total_seconds())
