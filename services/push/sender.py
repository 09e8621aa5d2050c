"""FCM through firebase-admin: sends messages and manages topic registrations.

firebase-admin's calls are synchronous (requests): each runs in a worker thread, so the
event loop keeps serving. Its own HTTP retries stay on (500 and 503 retried a few times,
Retry-After honoured); what still fails is mapped to the kit's errors:
429 QUOTA_EXCEEDED -> Transient with the Retry-After; 5xx, timeouts and connection errors
-> Transient; UNREGISTERED or INVALID_ARGUMENT -> Permanent (RecipientGone for a token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import firebase_admin
import structlog
from firebase_admin import credentials, exceptions, messaging

from crieur.channel.errors import DeliveryError, Permanent, RecipientGone, Transient

log = structlog.get_logger("crieur.push.sender")

T = TypeVar("T")

# Topic registrations of one phone made at once (FCM's v1 API takes one token and one
# topic per request, so a phone following 500 communes costs 2,000 requests).
TOPIC_CALLS = 32

# firebase-admin keeps its endpoints in private attributes of the messaging service; this
# is the version whose attributes `redirect` sets (a test checks they are still there).
FIREBASE_ADMIN_VERSION = "7.7.0"
GOOGLE_FCM_URL = "https://fcm.googleapis.com"

# What FCM says about one token when it will never take it (topic registrations report
# these per token; `messages:send` to a token raises them).
TOKEN_GONE = frozenset({"UNREGISTERED", "NOT_FOUND", "INVALID_ARGUMENT",
                        "registration-token-not-registered", "invalid-argument"})


def redirect(app: firebase_admin.App, base_url: str) -> None:
    """Point firebase-admin's messaging service of `app` at `base_url` instead of Google's.

    firebase-admin 7.x builds `_fcm_url` (messages:send) and `_fcm_topic_url` (the v1
    topic registrations) from fcm.googleapis.com with no option to change them; the
    OAuth token is asked at the credential's token_uri, so that needs no redirection.
    """
    base = base_url.rstrip("/")
    if base == GOOGLE_FCM_URL:
        return
    service: Any = messaging._get_messaging_service(app)
    for attribute in ("_fcm_url", "_fcm_topic_url", "_project_id"):
        if not hasattr(service, attribute):
            raise RuntimeError(f"firebase-admin {firebase_admin.__version__} has no "
                               f"messaging.{attribute}: pin firebase-admin=="
                               f"{FIREBASE_ADMIN_VERSION} or update push/sender.redirect")
    project = service._project_id
    service._fcm_url = f"{base}/v1/projects/{project}/messages:send"
    service._fcm_topic_url = f"{base}/v1/projects/{project}/registrations"


def open_app(credentials_file: Path, project: str, base_url: str,
             timeout_s: float) -> firebase_admin.App:
    """A firebase-admin app of its own (a unique name: tests open several in one process)."""
    app = firebase_admin.initialize_app(
        credentials.Certificate(str(credentials_file)),
        {"projectId": project, "httpTimeout": timeout_s},
        name=f"crieur-push-{uuid.uuid4().hex[:8]}")
    redirect(app, base_url)
    return app


def retry_after(error: exceptions.FirebaseError) -> float | None:
    response = error.http_response
    if response is None:
        return None
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def classify(error: exceptions.FirebaseError, *, to_token: bool = False) -> DeliveryError:
    """The kit's kind of failure for a firebase-admin error."""
    reason = f"{type(error).__name__}: {error.code}: {str(error)[:200]}"
    if isinstance(error, messaging.QuotaExceededError | exceptions.ResourceExhaustedError):
        return Transient(reason, retry_after(error))
    if isinstance(error, messaging.UnregisteredError) or (
            to_token and isinstance(error, exceptions.InvalidArgumentError)):
        return RecipientGone(reason)
    if isinstance(error, exceptions.InvalidArgumentError | messaging.SenderIdMismatchError
                  | exceptions.NotFoundError):
        return Permanent(reason)
    # UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, connection errors, and also a credential
    # FCM refuses (UNAUTHENTICATED): an operator can fix it, so the job waits and retries.
    return Transient(reason, retry_after(error))


@dataclass(frozen=True)
class TopicResult:
    """How one token's topic registrations went."""

    failed: dict[str, str]  # topic -> FCM's reason

    @property
    def token_gone(self) -> bool:
        return any(reason in TOKEN_GONE for reason in self.failed.values())


class FcmSender:
    """The real adapter: firebase-admin's messaging API, run in threads."""

    def __init__(self, app: firebase_admin.App, threads: int = 32) -> None:
        self.app = app
        self._closed = False
        # Our own threads: asyncio's default pool has min(32, cores + 4) threads, which on a
        # small machine would cap sends and a phone's topic registrations at six at once.
        self._pool = concurrent.futures.ThreadPoolExecutor(threads,
                                                           thread_name_prefix="fcm")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args))

    @classmethod
    def open(cls, credentials_file: Path, project: str, base_url: str,
             timeout_s: float, threads: int = 32) -> FcmSender:
        return cls(open_app(credentials_file, project, base_url, timeout_s), threads)

    async def send(self, message: messaging.Message) -> str:
        """Send one message; returns FCM's message name. Raises the kit's errors."""
        try:
            return await self._call(messaging.send, message, False, self.app)
        except exceptions.FirebaseError as error:
            raise classify(error, to_token=message.token is not None) from error

    async def check_token(self, token: str) -> None:
        """Ask FCM whether it still knows `token` (a dry run: nothing reaches the phone).

        Raises RecipientGone when FCM says UNREGISTERED or INVALID_ARGUMENT.
        """
        with warnings.catch_warnings():
            # firebase-admin 7.7 prefers installation ids (`fid`); the app gives us its
            # registration token, which FCM still takes.
            warnings.simplefilter("ignore", DeprecationWarning)
            message = messaging.Message(token=token)
        try:
            await self._call(messaging.send, message, True, self.app)
        except exceptions.FirebaseError as error:
            raise classify(error, to_token=True) from error

    async def _manage(self, token: str, topics: Iterable[str], subscribe: bool) -> TopicResult:
        call = messaging.subscribe_to_topic if subscribe else messaging.unsubscribe_from_topic
        failed: dict[str, str] = {}

        async def one(topic: str) -> None:
            try:
                response = await self._call(call, [token], topic, self.app)
            except exceptions.FirebaseError as error:
                raise classify(error) from error
            for problem in response.errors:
                failed[topic] = str(problem.reason)

        # A phone's topics go TOPIC_CALLS at a time (one HTTP request each).
        pending = list(topics)
        for start in range(0, len(pending), TOPIC_CALLS):
            await asyncio.gather(*(one(t) for t in pending[start:start + TOPIC_CALLS]))
        return TopicResult(failed)

    async def subscribe(self, token: str, topics: Iterable[str]) -> TopicResult:
        return await self._manage(token, topics, True)

    async def unsubscribe(self, token: str, topics: Iterable[str]) -> TopicResult:
        return await self._manage(token, topics, False)

    async def close(self) -> None:
        # Once: firebase-admin raises on deleting an app already deleted (a second stop).
        if self._closed:
            return
        self._closed = True
        # delete_app closes an async client with asyncio.run(): never inside our loop.
        await asyncio.to_thread(firebase_admin.delete_app, self.app)
        self._pool.shutdown(wait=False)
