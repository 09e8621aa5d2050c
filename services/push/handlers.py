"""The push channel's handlers: the kit's port (one job per notice and topic) and the
residents' device routes (answered over the front door's request-reply).

    POST   /api/v1/devices          {"token", "follows": [{"commune", "categories"}],
                                     "platform", "language"}
    PUT    /api/v1/devices/{token}  {"follows": [...]}: replaces what the phone follows
    DELETE /api/v1/devices/{token}  forgets the phone

Registration subscribes the token to its topics with firebase-admin (and unsubscribes it
from those it no longer follows). FCM saying the token is UNREGISTERED or INVALID_ARGUMENT
removes it from its topics and from storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Protocol

import structlog
from firebase_admin import messaging
from pydantic import ValidationError

from crieur.channel.errors import Permanent, RecipientGone, Transient
from crieur.channel.http_bridge import HttpError, Request, Router, json_reply
from crieur.channel.port import Edition, PortDefaults
from crieur.channel.ratelimit import LimitUnavailable, Network, SharedLimit
from schemas.channels import ChannelHttpReply
from schemas.deliveries import Channel
from schemas.jobs import Job
from schemas.notice import Notice
from services.push import format
from services.push.devices import (
    TOKEN,
    Device,
    Devices,
    Following,
    Registration,
    token_hash,
)
from services.push.sender import TopicResult

log = structlog.get_logger("crieur.push")


class Fcm(Protocol):
    """What the handlers need of FCM (services.push.sender.FcmSender is the real one)."""

    async def send(self, message: messaging.Message) -> str: ...

    async def subscribe(self, token: str, topics: list[str]) -> TopicResult: ...

    async def unsubscribe(self, token: str, topics: list[str]) -> TopicResult: ...

    async def check_token(self, token: str) -> None: ...


class PushChannel(PortDefaults):
    """The kit's port for push: the "recipient" of a job is an FCM topic, not a phone."""

    channel = Channel.PUSH

    def __init__(self, fcm: Fcm, *, concurrency: int, rate_per_s: float | None,
                 public_url: str, now: Callable[[], datetime]) -> None:
        self.fcm = fcm
        self.concurrency = concurrency
        self.rate_per_s = rate_per_s
        self.public_url = public_url
        self.now = now

    async def recipients(self, notice: Notice) -> AsyncIterator[str]:
        # One topic per (commune, category): a notice costs one FCM request, whoever follows.
        yield format.topic(notice.commune, notice.category)

    async def prepare(self, edition: Edition) -> Edition:
        # The message's time-to-live depends on the moment it goes: built in send().
        return edition

    async def send(self, job: Job, draft: Edition) -> str:
        message = format.message(draft, job.recipient, self.now(), self.public_url)
        name = await self.fcm.send(message)
        log.info("push_sent", notice_id=job.notice_id, commune=job.commune, topic=job.recipient,
                 kind=job.kind, version=job.version, fcm_name=name)
        return job.recipient  # a topic is not personal

    def report_target(self, recipient: str) -> str:
        """DELIVERIES name the whole topic (the kit's default keeps 12 characters of an id)."""
        return recipient

    async def on_permanent(self, job: Job, error: Permanent) -> None:
        # FCM refused a topic message for good (INVALID_ARGUMENT: our payload): nothing to
        # forget, but someone must look at it.
        log.error("push_refused", notice_id=job.notice_id, topic=job.recipient,
                  reason=error.reason)


class DeviceRoutes:
    """POST, PUT, DELETE /api/v1/devices...: strict input, rate-limited per client address."""

    def __init__(self, devices: Devices, fcm: Fcm,
                 commune_known: Callable[[str], Any], *, per_client: SharedLimit,
                 now: Callable[[], datetime], reply_within_s: float = 3.0,
                 trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.devices = devices
        self.trusted_proxies = trusted_proxies
        self.fcm = fcm
        self.commune_known = commune_known
        # Counted by every process together and kept across restarts (bucket push_limits).
        self.per_client = per_client
        self.now = now
        self.reply_within_s = reply_within_s
        self._pending: set[asyncio.Task[Device]] = set()

    def register(self, router: Router) -> None:
        router.add("POST", "/api/v1/devices", self.create)
        router.add("PUT", "/api/v1/devices/{token}", self.replace)
        router.add("DELETE", "/api/v1/devices/{token}", self.delete)

    async def _limit(self, request: Request) -> None:
        # A hash: the bucket holds no client address.
        client = hashlib.sha256(
            b"push-client:" + request.client_key(self.trusted_proxies).encode()).hexdigest()[:32]
        try:
            refused = await self.per_client.hit(client)
        except LimitUnavailable as error:
            log.warning("push_limit_unavailable", error=str(error))
            raise HttpError(503, "channel_unavailable", "Les notifications sont "
                            "momentanément indisponibles ; réessayez plus tard.") from error
        if refused is not None:
            if refused.first:
                log.warning("push_limit_reached", limit=self.per_client.prefix)
            raise HttpError(429, "rate_limited", "Trop de demandes ; réessayez plus tard.",
                            headers={"retry-after": str(int(refused.retry_after_s) + 1)})

    async def _check_communes(self, following: Following) -> None:
        for i, follow in enumerate(following.follows):
            if not await self.commune_known(follow.commune):
                raise HttpError(422, "invalid_input", "Commune inconnue.", fields=[
                    {"field": f"follows.{i}.commune",
                     "message": f"la commune {follow.commune} n’utilise pas Crieur"}])

    async def create(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        try:
            body = Registration.model_validate(request.json())
        except ValidationError as error:
            raise invalid(error) from error
        await self._check_communes(body)
        known = await self.devices.get(body.token)
        now = self.now()
        device = Device(token=body.token, follows=body.follows,
                        platform=body.platform or "android", language=body.language or "fr",
                        topics=known.topics if known else (),
                        created_at=known.created_at if known else now, updated_at=now)
        return await self._sync_or_accept(device, 200 if known else 201)

    async def replace(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        token = self._token(request)
        try:
            body = Following.model_validate(request.json())
        except ValidationError as error:
            raise invalid(error) from error
        await self._check_communes(body)
        known = await self.devices.get(token)
        if known is None:
            raise HttpError(404, "device_unknown", "Ce téléphone n’est pas inscrit ; "
                            "inscrivez-le avec POST /api/v1/devices.")
        update: dict[str, Any] = {"follows": body.follows, "updated_at": self.now()}
        if body.platform is not None:
            update["platform"] = body.platform
        if body.language is not None:
            update["language"] = body.language
        return await self._sync_or_accept(known.model_copy(update=update), 200)

    async def delete(self, request: Request) -> ChannelHttpReply:
        await self._limit(request)
        token = self._token(request)
        known = await self.devices.get(token)
        if known is not None:
            await self.forget(known, "asked")
        return ChannelHttpReply(status=204)

    def _token(self, request: Request) -> str:
        token = request.params["token"]
        if not TOKEN.match(token):
            raise HttpError(422, "invalid_input", "Jeton invalide.", fields=[
                {"field": "token", "message": "not an FCM registration token"}])
        return token

    async def _sync_or_accept(self, device: Device, status: int) -> ChannelHttpReply:
        """Answer once FCM has the phone's topics, or 202 if that takes longer than the front
        door waits (a phone following hundreds of communes): the work goes on regardless."""
        task = asyncio.create_task(self._sync(device))
        done, _ = await asyncio.wait({task}, timeout=self.reply_within_s)
        if task in done:
            return json_reply(status, view(task.result()))  # raises the task's HttpError
        self._pending.add(task)
        task.add_done_callback(self._finished_late)
        return json_reply(202, view(device.model_copy(update={"topics": device.wanted}))
                          | {"pending": True})

    def _finished_late(self, task: asyncio.Task[Device]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Logged by _sync; a token FCM refused is forgotten there too.
            log.warning("device_sync_failed_late", error=repr(task.exception())[:200])

    async def _sync(self, device: Device) -> Device:
        """Store the device, then bring FCM's topics in line with what it follows."""
        bound = log.bind(device=token_hash(device.token)[:12])
        wanted = list(device.wanted)
        stale = [t for t in device.topics if t not in set(wanted)]
        # Stored first, with every topic it may be in, so a failure halfway loses nothing:
        # a retry (or a DELETE) knows what to clean up.
        await self.devices.put(device.model_copy(update={
            "topics": tuple(dict.fromkeys([*device.topics, *wanted]))}))
        try:
            added = await self.fcm.subscribe(device.token, wanted)
            removed = await self.fcm.unsubscribe(device.token, stale) if stale else TopicResult({})
        except Transient as error:
            bound.warning("device_topics_failed", reason=error.reason)
            raise unavailable(error.retry_after) from error
        except Permanent as error:
            bound.error("device_topics_refused", reason=error.reason)
            raise unavailable(None) from error
        if added.token_gone or removed.token_gone:
            await self.forget(device, "token refused by FCM")
            raise HttpError(422, "invalid_input", "FCM ne reconnaît pas ce jeton.", fields=[
                {"field": "token", "message": "FCM says this token is not registered or not "
                                              "valid"}])
        if added.failed or removed.failed:
            bound.warning("device_topics_failed", failed=added.failed | removed.failed)
            raise unavailable(None)
        device = device.model_copy(update={"topics": tuple(wanted)})
        await self.devices.put(device)
        bound.info("device_registered", topics=len(wanted), platform=device.platform)
        return device

    async def forget(self, device: Device, why: str) -> None:
        """Unsubscribe the token from every topic it may be in, then drop it from storage."""
        topics = list(dict.fromkeys([*device.topics, *device.wanted]))
        try:
            if topics:
                await self.fcm.unsubscribe(device.token, topics)
        except (Transient, Permanent) as error:
            # A dead token gets nothing from its topics anyway; FCM prunes it in time.
            log.warning("device_unsubscribe_failed", device=token_hash(device.token)[:12],
                        reason=error.reason)
        await self.devices.delete(device.token)
        log.info("device_forgotten", device=token_hash(device.token)[:12], why=why)


    async def prune(self) -> int:
        """Forget every stored phone whose token FCM no longer knows; returns how many.

        Topic messages never say a token died (FCM drops it from its topics silently), so
        the tokens are checked now and then with a dry run, as FCM's guidance asks.
        """
        forgotten = 0
        async for device in self.devices.all():
            try:
                await self.fcm.check_token(device.token)
            except RecipientGone as error:
                log.info("device_token_gone", device=token_hash(device.token)[:12],
                         reason=error.reason)
                await self.forget(device, "token refused by FCM")
                forgotten += 1
            except (Transient, Permanent) as error:
                log.warning("device_check_failed", reason=error.reason)
                return forgotten  # FCM is unwell: try again next time
        return forgotten


def view(device: Device) -> dict[str, Any]:
    """What the app gets back: what it follows, never the token in a log-able form."""
    return {
        "device": token_hash(device.token)[:16],
        "follows": [{"commune": f.commune, "categories": [c.value for c in f.categories]}
                    for f in device.follows],
        "platform": device.platform.value,
        "language": device.language,
        "topics": list(device.topics),
    }


def invalid(error: ValidationError) -> HttpError:
    fields = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        fields.append({"field": ".".join(str(p) for p in problem["loc"]) or "body",
                       "message": message})
    return HttpError(422, "invalid_input", "Inscription invalide.", fields=fields)


def unavailable(retry_after: float | None) -> HttpError:
    seconds = max(1, math.ceil(retry_after or 30))
    return HttpError(503, "fcm_unavailable",
                     "Le service de notifications ne répond pas ; réessayez plus tard.",
                     headers={"retry-after": str(seconds)})
