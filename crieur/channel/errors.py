"""What a channel's sender raises: each failure says whether trying again can help."""

from __future__ import annotations


class DeliveryError(Exception):
    """A send did not happen; `reason` is for DELIVERIES and logs (never an address)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transient(DeliveryError):
    """Worth trying again later (SMTP 4xx, HTTP 5xx or 429, a dropped connection).

    `retry_after` (seconds) is the sink's own word, e.g. HTTP Retry-After; it wins over
    the kit's backoff when it is longer.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Permanent(DeliveryError):
    """Trying again cannot help for this recipient (SMTP 5xx, an invalid number)."""


class RecipientGone(Permanent):
    """The recipient no longer exists at the sink (FCM UNREGISTERED): forget it."""


class Unsubscribed(Permanent):
    """The recipient left (unsubscribed, deleted) before the job's turn: reported as
    `dropped`, not as a failure, and `on_permanent` is not called."""
