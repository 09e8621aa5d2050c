"""A stand-in SMS provider: speaks Brevo's and OVHcloud's HTTP, records, answers back.

- Brevo: `POST /v3/transactionalSMS/send` (`api-key` header) -> 201 `{"messageId": n}`.
- OVHcloud (what the `ovh` SDK calls): `GET /1.0/auth/time`, `POST /1.0/sms/<service>/jobs`
  (signed headers required) -> `{"ids": [n], "validReceivers": [...], ...}`.

Every send request is recorded as it arrived, with the status it was answered (`status`),
one JSON line in `<dir>/sms.jsonl`, and the last KEPT_IN_MEMORY of them in memory for
`GET /_standin/received` (a bench of 200,000 SMS kept them all: 484 MB).
It can be told, over HTTP, to:

- fail: `POST /_standin/fail {"status": 503, "times": 5}` or `{"status": 429,
  "seconds": 3, "retry_after": 1}` or `{"delay_s": 30}` (a silent provider, for timeouts);
  with a 2xx status, `{"status": 201, "delay_s": 12, "times": 8}`, a slow provider that
  sends all the same; `POST /_standin/heal` stops it;
- refuse numbers as invalid: `POST /_standin/invalid {"numbers": ["+33600000000"]}`;
- post a reply from a resident to the webhook: `POST /_standin/reply {"from": "+336...",
  "text": "STOP"}`, and, with `--receipts`, a delivery receipt for every SMS it accepts
  (to the request's `webUrl`, else `<webhook>/receipts`).

Run: `python -m crieur_dev.standins.sms` (`make run` does: port CRIEUR_SMS_STANDIN_PORT, files
under <CRIEUR_DATA_DIR>/standins, replies and receipts to the front door's webhooks with
the secret `make run` keeps); in-process: `await SmsStandin(dir).start()`. `GET /` lists
what it received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import json
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crieur.nats_server import free_port
from crieur.secretfile import kept_secret

FILE = "sms.jsonl"
_NUMBER = re.compile(r"^\+?[1-9]\d{7,14}$")


@dataclass
class Failure:
    status: int = 503
    times: int | None = None
    until: float | None = None  # time.monotonic()
    retry_after: float | None = None
    delay_s: float = 0.0

    def active(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.times is None or self.times > 0


# Requests kept in memory (the file keeps every one).
KEPT_IN_MEMORY = 10_000


@dataclass
class SmsStandinState:
    directory: Path
    webhook: str | None = None
    receipts: bool = False
    received: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=KEPT_IN_MEMORY))
    failure: Failure | None = None
    invalid: set[str] = field(default_factory=set)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_001))
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # The number each accepted message went to, for receipts.
    sent_to: dict[str, str] = field(default_factory=dict)

    def arrived(self, request: Request, body: bytes) -> dict[str, Any]:
        """Kept in memory at once, in the order requests arrive."""
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode(errors="replace")
        entry = {"at": datetime.now(UTC).isoformat(), "method": request.method,
                 "path": request.url.path, "query": request.url.query,
                 "headers": dict(request.headers), "body": parsed,
                 # What it answered (None: the client left first): the demo phone shows
                 # only what was accepted.
                 "status": None}
        self.received.append(entry)
        return entry

    def answered(self, entry: dict[str, Any], status: int | None) -> None:
        entry["status"] = status
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / FILE).open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    async def failing(self) -> Response | None:
        failure = self.failure
        if failure is None or not failure.active(time.monotonic()):
            return None
        if failure.times is not None:
            failure.times -= 1
        if failure.delay_s:
            await asyncio.sleep(failure.delay_s)
        if failure.status < 300:
            return None  # slow, not failing: the request goes on as usual
        headers = {}
        if failure.retry_after is not None:
            headers["Retry-After"] = str(failure.retry_after)
        return JSONResponse({"code": "standin_failure", "message": "told to fail"},
                            status_code=failure.status, headers=headers)

    def later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post_receipt(self, url: str, message_id: str, to: str) -> None:
        await asyncio.sleep(0.05)
        event = {"messageId": int(message_id), "to": to.removeprefix("+"), "event": "delivered",
                 "msg_status": "delivered", "type": "sms",
                 "date": datetime.now(UTC).isoformat()}
        await _post(url, event)


async def _post(url: str, body: dict[str, Any]) -> int:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            return (await client.post(url, json=body)).status_code
    except httpx.HTTPError:
        return 0


def build_app(state: SmsStandinState) -> Starlette:
    def recorded(handle: Any) -> Any:
        """Every request kept as it arrived, with the status it got."""
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            entry = state.arrived(request, body)
            status = None
            try:
                response: Response = await handle(request, body)
                status = response.status_code
                return response
            finally:  # also when the client gave up and the answer is cancelled
                state.answered(entry, status)
        return endpoint

    @recorded
    async def brevo_send(request: Request, body: bytes) -> Response:
        if not request.headers.get("api-key"):
            return JSONResponse({"code": "unauthorized", "message": "Key not found"}, 401)
        if (fail := await state.failing()) is not None:
            return fail
        try:
            data = json.loads(body)
            recipient, content = str(data["recipient"]), str(data["content"])
            sender = str(data["sender"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"code": "missing_parameter",
                                 "message": "recipient, content and sender are required"}, 400)
        if not content or not sender:
            return JSONResponse({"code": "invalid_parameter", "message": "empty content"}, 400)
        number = "+" + recipient.removeprefix("+")
        if not _NUMBER.match(number) or number in state.invalid:
            return JSONResponse({"code": "invalid_parameter",
                                 "message": "Invalid recipient phone number"}, 400)
        message_id = str(next(state.ids))
        state.sent_to[message_id] = number
        if state.receipts:
            url = data.get("webUrl") or (state.webhook and f"{state.webhook}/receipts")
            if url:
                state.later(state.post_receipt(url, message_id, number))
        return JSONResponse({"messageId": int(message_id)}, 201)

    async def ovh_time(request: Request) -> Response:
        return JSONResponse(int(time.time()))

    @recorded
    async def ovh_jobs(request: Request, body: bytes) -> Response:
        if not all(request.headers.get(h) for h in
                   ("x-ovh-application", "x-ovh-consumer", "x-ovh-signature",
                    "x-ovh-timestamp")):
            return JSONResponse({"errorCode": "INVALID_CREDENTIAL",
                                 "message": "This credential is not valid"}, 403)
        if (fail := await state.failing()) is not None:
            return fail
        try:
            data = json.loads(body)
            receivers = [str(r) for r in data["receivers"]]
            if not data["message"]:
                raise ValueError("empty")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"message": "Invalid body"}, 400)
        valid = [r for r in receivers if _NUMBER.match(r) and r not in state.invalid]
        invalid = [r for r in receivers if r not in valid]
        ids = [next(state.ids) for _ in valid]
        for message_id, number in zip(ids, valid, strict=True):
            state.sent_to[str(message_id)] = number
            if state.receipts and state.webhook:
                state.later(state.post_receipt(f"{state.webhook}/receipts", str(message_id),
                                               number))
        return JSONResponse({"totalCreditsRemoved": len(valid), "invalidReceivers": invalid,
                             "validReceivers": valid, "ids": ids, "tag": ""})

    async def received(request: Request) -> Response:
        return JSONResponse(list(state.received))

    async def forget(request: Request) -> Response:
        state.received.clear()
        return JSONResponse({"ok": True})

    async def fail(request: Request) -> Response:
        data = await request.json()
        seconds = data.get("seconds")
        state.failure = Failure(
            status=int(data.get("status", 503)), times=data.get("times"),
            until=time.monotonic() + float(seconds) if seconds is not None else None,
            retry_after=data.get("retry_after"), delay_s=float(data.get("delay_s", 0)))
        return JSONResponse({"ok": True})

    async def heal(request: Request) -> Response:
        state.failure = None
        return JSONResponse({"ok": True})

    async def invalid(request: Request) -> Response:
        state.invalid |= set((await request.json()).get("numbers", []))
        return JSONResponse({"ok": True})

    async def reply(request: Request) -> Response:
        data = await request.json()
        url = data.get("url") or (state.webhook and f"{state.webhook}/inbound")
        if not url:
            return JSONResponse({"error": "no webhook configured"}, 409)
        status = await _post(url, {"event": "replied", "from": str(data["from"]),
                                   "reply": str(data["text"]),
                                   "date": datetime.now(UTC).isoformat()})
        return JSONResponse({"webhook_status": status})

    async def page(request: Request) -> Response:
        rows = "".join(
            f"<li><b>{html.escape(str(r['body'].get('recipient', r['body'].get('receivers'))))}"
            f"</b> : {html.escape(str(r['body'].get('content', r['body'].get('message'))))}</li>"
            for r in reversed(state.received) if isinstance(r.get("body"), dict))
        return HTMLResponse(f"<!doctype html><html lang=fr><meta charset=utf-8><title>SMS "
                            f"reçus par le faux opérateur</title><h1>SMS reçus</h1>"
                            f"<ul>{rows or '<li>Aucun pour l’instant.</li>'}</ul></html>")

    return Starlette(routes=[
        Route("/", page, methods=["GET"]),
        Route("/v3/transactionalSMS/send", brevo_send, methods=["POST"]),
        Route("/1.0/auth/time", ovh_time, methods=["GET"]),
        Route("/1.0/sms/{service}/jobs", ovh_jobs, methods=["POST"]),
        Route("/_standin/received", received, methods=["GET"]),
        Route("/_standin/received", forget, methods=["DELETE"]),
        Route("/_standin/fail", fail, methods=["POST"]),
        Route("/_standin/heal", heal, methods=["POST"]),
        Route("/_standin/invalid", invalid, methods=["POST"]),
        Route("/_standin/reply", reply, methods=["POST"]),
        Route("/healthz", lambda r: JSONResponse({"status": "ok"}), methods=["GET"]),
    ])


class SmsStandin:
    """In-process: `await SmsStandin(dir).start()`; `.url` is its base URL."""

    def __init__(self, directory: Path, *, port: int = 0, webhook: str | None = None,
                 receipts: bool = False) -> None:
        self.state = SmsStandinState(directory, webhook=webhook, receipts=receipts)
        self.port = port or free_port()
        self._server = uvicorn.Server(uvicorn.Config(
            build_app(self.state), host="127.0.0.1", port=self.port, log_config=None,
            access_log=False, lifespan="off"))
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[dict[str, Any]]:
        return list(self.state.received)

    def sends(self) -> list[dict[str, Any]]:
        """The send requests (either API), not the clock reads."""
        return [r for r in self.received if r["method"] == "POST"]

    def fail(self, status: int = 503, *, times: int | None = None,
             seconds: float | None = None, retry_after: float | None = None,
             delay_s: float = 0.0) -> None:
        self.state.failure = Failure(status, times, time.monotonic() + seconds
                                     if seconds is not None else None, retry_after, delay_s)

    def heal(self) -> None:
        self.state.failure = None

    async def start(self) -> SmsStandin:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)


def _default_webhook(data_dir: Path) -> str:
    """The front door's SMS webhooks, as `make run` sets them up (same secret file)."""
    secret = os.environ.get("CRIEUR_SMS_WEBHOOK_SECRET") or kept_secret(
        data_dir / "sms-webhook-secret")
    base = os.environ.get("CRIEUR_PUBLIC_URL") or (
        f"http://127.0.0.1:{os.environ.get('CRIEUR_HTTP_PORT', '8080')}")
    return f"{base.rstrip('/')}/webhooks/sms/{secret}"


def main(argv: list[str] | None = None) -> int:
    data_dir = Path(os.environ.get("CRIEUR_DATA_DIR", "var"))
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, default=data_dir / "standins")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("CRIEUR_SMS_STANDIN_PORT", "8087")))
    parser.add_argument("--webhook", default=None,
                        help="base URL of the SMS webhooks, /webhooks/sms/<secret> (default: "
                             "the front door's, with make run's secret)")
    parser.add_argument("--no-receipts", action="store_true",
                        help="do not post a delivery receipt for every SMS accepted")
    args = parser.parse_args(argv)
    state = SmsStandinState(args.dir, webhook=args.webhook or _default_webhook(data_dir),
                            receipts=not args.no_receipts)
    uvicorn.run(build_app(state), host=args.host, port=args.port, log_config=None,
                access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
