"""A stand-in Web Push service (RFC 8030), as a browser vendor runs one, for `make run` and tests.

It makes browsers' subscriptions (a P-256 key pair and an auth secret each, kept in
`<dir>/webpush-keys.json`), takes the encrypted requests sent to them, checks the VAPID
signature (RFC 8292), decrypts the payload (RFC 8291, aes128gcm) with the browser's keys,
and records it, one JSON line in `<dir>/webpush.jsonl` (the demo phone page shows them).

    POST /push/{id}              a push message (201); 404 for an unknown subscription,
                                 410 for one told gone
    POST /_standin/subscriptions {"name"}: a new subscription, as PushSubscription.toJSON();
                                 {"name", "count"}: `count` new ones, {"subscriptions": [...]}
                                 (the bench and the chaos suite seed thousands at once)
    POST /_standin/fail          {"status": 503, "times": 2, "retry_after": 1}; /heal stops
                                 ({"left": failures not yet served})
    POST /_standin/gone          {"endpoint"}: answer 410 for it from now on
    GET  /_standin/received      what it accepted, decrypted

With CRIEUR_DEMO_PHONES (INSEE codes, set by `make run`), it subscribes a demo browser to
each commune through the front door, as the commune page would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import http_ece
import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FILE, KEYS = "webpush.jsonl", "webpush-keys.json"
DEFAULT_PORT = 8089
# What `received` keeps in memory (webpush.jsonl has every message): a bench sends 100,000.
KEEP_RECEIVED = 10_000
# Subscriptions made by one request, at most.
MAX_BATCH = 200_000


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class Failure:
    status: int
    times: int
    retry_after: float | None = None


class WebpushStandin:
    def __init__(self, directory: Path, base_url: str) -> None:
        self.directory = directory
        self.base_url = base_url.rstrip("/")
        self.received: list[dict[str, Any]] = []
        self.accepted = 0
        self.failure: Failure | None = None
        self.gone: set[str] = set()
        path = directory / KEYS
        # id -> (name, private value, auth): subscriptions outlive a restart of the stand-in.
        self.keys: dict[str, list[Any]] = json.loads(path.read_text()) if path.exists() else {}
        self.app = Starlette(routes=[
            Route("/push/{id}", self.push, methods=["POST"]),
            Route("/_standin/subscriptions", self.new, methods=["POST"]),
            Route("/_standin/fail", self.fail, methods=["POST"]),
            Route("/_standin/heal", self.heal, methods=["POST"]),
            Route("/_standin/gone", self.go, methods=["POST"]),
            Route("/_standin/received", self.list, methods=["GET"]),
            Route("/", self.list, methods=["GET"]),
            Route("/healthz", lambda _: JSONResponse({"status": "ok"}), methods=["GET"])])

    def subscription(self, name: str) -> dict[str, Any]:
        """A new browser's PushSubscription.toJSON() (or the one named so already)."""
        found = [i for i, (n, *_) in self.keys.items() if n == name]
        if found:
            sid = found[0]
        else:
            sid = b64encode(os.urandom(16))
            key = ec.generate_private_key(ec.SECP256R1())
            self.keys[sid] = [name, key.private_numbers().private_value, b64encode(os.urandom(16))]
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / KEYS).write_text(json.dumps(self.keys))
        _, value, auth = self.keys[sid]
        public = ec.derive_private_key(value, ec.SECP256R1()).public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": f"{self.base_url}/push/{sid}", "expirationTime": None,
                "keys": {"p256dh": b64encode(public), "auth": auth}}

    def subscriptions(self, name: str, count: int) -> list[dict[str, Any]]:
        """`count` new browsers named `<name> <i>`, the keys file written once (a write per
        subscription rewrites a file that grows with each: quadratic at 100,000)."""
        made = []
        for i in range(count):
            sid = b64encode(os.urandom(16))
            key = ec.generate_private_key(ec.SECP256R1())
            auth = b64encode(os.urandom(16))
            self.keys[sid] = [f"{name} {i}", key.private_numbers().private_value, auth]
            public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            made.append({"endpoint": f"{self.base_url}/push/{sid}", "expirationTime": None,
                         "keys": {"p256dh": b64encode(public), "auth": auth}})
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / KEYS).write_text(json.dumps(self.keys))
        return made

    async def new(self, request: Request) -> Response:
        body = await request.json()
        name = str(body.get("name") or "navigateur")
        if "count" in body:
            count = body["count"]
            if not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
                return JSONResponse({"reason": f"count: 1 to {MAX_BATCH}"}, 422)
            return JSONResponse({"subscriptions": self.subscriptions(name, count)}, 201)
        return JSONResponse(self.subscription(name), 201)

    async def push(self, request: Request) -> Response:
        sid, body = request.path_params["id"], await request.body()
        if sid not in self.keys:
            return JSONResponse({"reason": "unknown subscription"}, 404)
        if f"{self.base_url}/push/{sid}" in self.gone:
            return JSONResponse({"reason": "subscription expired"}, 410)
        if (failure := self.failure) is not None and failure.times > 0:
            failure.times -= 1
            extra = ({} if failure.retry_after is None
                     else {"retry-after": f"{failure.retry_after:g}"})
            return JSONResponse({"reason": "told to fail"}, failure.status, headers=extra)
        headers = request.headers
        try:
            ok = Vapid02.verify(headers.get("authorization", ""))
            token = headers["authorization"].split("t=")[1].split(",")[0]
            audience = json.loads(b64decode(token.split(".")[1]))["aud"]
        except Exception:
            ok, audience = False, None
        if not ok or audience != f"{request.url.scheme}://{request.url.netloc}":
            return JSONResponse({"reason": "VAPID signature or audience refused"}, 401)
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return JSONResponse({"reason": "aes128gcm and a TTL are required"}, 400)
        name, value, auth = self.keys[sid]
        try:
            payload = json.loads(http_ece.decrypt(
                body, private_key=ec.derive_private_key(value, ec.SECP256R1()),
                auth_secret=b64decode(auth), version="aes128gcm"))
        except Exception:
            return JSONResponse({"reason": "cannot decrypt"}, 400)
        entry = {"at": datetime.now(UTC).isoformat(), "browser": name, "subscription": sid,
                 "ttl": int(headers["ttl"]), "urgency": headers.get("urgency", "normal"),
                 "topic": headers.get("topic"), "payload": payload, "status": 201}
        self.received.append(entry)
        if len(self.received) > KEEP_RECEIVED:
            del self.received[:len(self.received) - KEEP_RECEIVED // 2]
        self.accepted += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / FILE).open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return Response(status_code=201, headers={"location": f"/messages/{self.accepted}"})

    async def fail(self, request: Request) -> Response:
        body = await request.json()
        self.failure = Failure(int(body.get("status", 503)), int(body.get("times", 1)),
                               body.get("retry_after"))
        return JSONResponse({"ok": True})

    async def heal(self, _: Request) -> Response:
        # What was still to fail: a test proves its failures were all served.
        left = self.failure.times if self.failure is not None else 0
        self.failure = None
        return JSONResponse({"ok": True, "left": left})

    async def go(self, request: Request) -> Response:
        self.gone.add(str((await request.json())["endpoint"]))
        return JSONResponse({"ok": True})

    async def list(self, _: Request) -> Response:
        return JSONResponse(self.received[-500:])


async def subscribe_demo_browsers(standin: WebpushStandin, api_url: str,
                                  communes: list[str]) -> None:
    """Subscribe one demo browser per commune to every category; the services may be late."""
    todo = list(communes)
    async with httpx.AsyncClient(timeout=10) as client:
        while todo:
            commune = todo[0]
            body = {"subscription": standin.subscription(f"Navigateur de Léa ({commune})"),
                    "follows": [{"commune": commune, "categories": [
                        "information", "evenement", "travaux", "alerte"]}]}
            with contextlib.suppress(httpx.HTTPError):
                reply = await client.post(f"{api_url}/api/v1/subscriptions/webpush", json=body)
                if reply.status_code in (200, 201, 422):
                    todo.pop(0)
                    continue
            await asyncio.sleep(1.0)


def setup(port: int) -> dict[str, str]:
    """`make run`: the Web Push service may post to this stand-in (plain http)."""
    hosts = [h for h in os.environ.get("CRIEUR_WEBPUSH_EXTRA_HOSTS", "").split(",") if h]
    return {"CRIEUR_WEBPUSH_EXTRA_HOSTS": ",".join([*hosts, f"127.0.0.1:{port}"])}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    port = int(os.environ.get("CRIEUR_WEBPUSH_STANDIN_PORT", DEFAULT_PORT))
    if args[:1] == ["setup"]:
        print(json.dumps(setup(port)))  # the launcher reads this last line
        return 0
    data = Path(os.environ.get("CRIEUR_DATA_DIR", "var"))
    standin = WebpushStandin(data / "standins", f"http://127.0.0.1:{port}")
    api_url = os.environ.get(
        "CRIEUR_API_URL", f"http://127.0.0.1:{os.environ.get('CRIEUR_HTTP_PORT', '8080')}")
    communes = [c for c in os.environ.get("CRIEUR_DEMO_PHONES", "").split(",") if c]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(subscribe_demo_browsers(standin, api_url, communes))
        yield
        task.cancel()

    standin.app.router.lifespan_context = lifespan
    uvicorn.run(standin.app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
