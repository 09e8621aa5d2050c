"""A local stand-in of Firebase Cloud Messaging that speaks the FCM v1 HTTP API.

firebase-admin's real code path is pointed at it (services.push.sender.redirect): it answers

- `POST /token`: the OAuth 2.0 token endpoint a service account's `token_uri` names
  (JWT-bearer grant, as google-auth asks it), giving an access token;
- `POST /v1/projects/{project}/messages:send`: one message (token, topic or condition);
- `POST /v1/projects/{project}/registrations/{token}/topicSubscriptions?topic_name=T` and
  `DELETE .../topicSubscriptions/{topic}?allow_missing=true`: the topic registrations
  firebase-admin's `subscribe_to_topic` / `unsubscribe_from_topic` make (one per token).

Every request is recorded as it came, one JSON line in `<dir>/fcm.jsonl` and in memory
(`GET /_standin/received`); the demo phone page reads that file. It can be told, in-process
or over HTTP (`POST /_standin/faults`, `POST /_standin/tokens/{token}`), to answer 503,
500, 429 with Retry-After, or to call a token UNREGISTERED or INVALID_ARGUMENT.

    python -m crieur_dev.standins.fcm --dir var/standins --port 8083
    python -m crieur_dev.standins.fcm setup <data dir>   # `make run`: credentials for the stand-in
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import itertools
import json
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

DEFAULT_PORT = 8083
RECORD_FILE = "fcm.jsonl"
CREDENTIALS_FILE = "fcm-service-account.json"
DEFAULT_PROJECT = "crieur-demo"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
TOPIC = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")
# FCM refuses a message whose payload is over 4,096 bytes.
MAX_PAYLOAD_BYTES = 4096


@dataclass
class Fault:
    """Answer `status` to the next `times` requests whose path contains `path`."""

    status: int
    times: int = 1
    path: str = ""
    retry_after: float | None = None

    def body(self) -> dict[str, Any]:
        kinds = {429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), 500: ("INTERNAL", "INTERNAL"),
                 503: ("UNAVAILABLE", "UNAVAILABLE")}
        status, code = kinds.get(self.status, ("UNKNOWN", "UNSPECIFIED_ERROR"))
        return _error(self.status, status, code, "Stand-in told to fail")


def _https_image(message: dict[str, Any]) -> bool:
    """FCM's phones fetch a notification's image themselves, over https only."""
    images = [section.get("image") for section in (
        message.get("notification") or {},
        (message.get("webpush") or {}).get("notification") or {},
        ((message.get("apns") or {}).get("fcm_options")) or {})]
    return all(image is None or (isinstance(image, str) and image.startswith("https://"))
               for image in images)


def _error(http: int, status: str, code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": http, "message": message, "status": status,
                      "details": [{"@type": FCM_ERROR, "errorCode": code}]}}


class FcmStandin:
    """The stand-in's state: tokens issued, subscriptions, what it received, faults to play."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.received: list[dict[str, Any]] = []
        self.access_tokens: set[str] = set()
        self.subscriptions: dict[str, set[str]] = {}  # topic -> tokens
        self.faults: list[Fault] = []
        # token -> "UNREGISTERED" or "INVALID_ARGUMENT"
        self.bad_tokens: dict[str, str] = {}
        # Seconds each topic registration takes (a slow FCM, for tests).
        self.registration_delay_s = 0.0
        self.app = self._build_app()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- what tests and the control routes call ------------------------------------------

    def fail(self, status: int, times: int = 1, path: str = "",
             retry_after: float | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(status, times, path, retry_after))

    def mark_token(self, token: str, state: str) -> None:
        """`state`: UNREGISTERED, INVALID_ARGUMENT, or anything else to make it good again."""
        with self._lock:
            if state in ("UNREGISTERED", "INVALID_ARGUMENT"):
                self.bad_tokens[token] = state
            else:
                self.bad_tokens.pop(token, None)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.bad_tokens.clear()

    def sent(self) -> list[dict[str, Any]]:
        """The messages accepted by `messages:send` (the `message` of each; dry runs aside)."""
        return [r["body"]["message"] for r in list(self.received)
                if r["path"].endswith("/messages:send") and r["status"] == 200
                and not r["body"].get("validate_only")]

    def topics_of(self, token: str) -> set[str]:
        with self._lock:
            return {topic for topic, tokens in self.subscriptions.items() if token in tokens}

    # -- running --------------------------------------------------------------------------

    def start(self, port: int, host: str = "127.0.0.1") -> str:
        """Serve in a background thread (tests); returns the base URL."""
        config = uvicorn.Config(self.app, host=host, port=port, log_config=None,
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="fcm-standin")
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("FCM stand-in did not start")
            time.sleep(0.02)
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    # -- the HTTP side ----------------------------------------------------------------------

    def _record(self, request: Request, raw: bytes, status: int) -> None:
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = {
            "n": next(self._ids),
            "at": datetime.now(UTC).isoformat(),
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()
                        if k.lower() != "authorization"},
            "body": body,
            "status": status,
        }
        with self._lock:
            self.received.append(record)
            if self.directory is not None:
                with (self.directory / RECORD_FILE).open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.path in path:
                    fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times > 0]
        return None

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[7:] in self.access_tokens

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="FCM stand-in", docs_url=None, redoc_url=None, openapi_url=None)

        def answer(request: Request, raw: bytes, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> Response:
            self._record(request, raw, status)
            return JSONResponse(body, status_code=status, headers=headers)

        async def guarded(request: Request) -> tuple[bytes, Response | None]:
            raw = await request.body()
            if not self._authorized(request):
                return raw, answer(request, raw, 401, _error(
                    401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR",
                    "Request had invalid authentication credentials."))
            fault = self._fault_for(request.url.path)
            if fault is not None:
                headers = ({"Retry-After": f"{fault.retry_after:g}"}
                           if fault.retry_after is not None else None)
                return raw, answer(request, raw, fault.status, fault.body(), headers)
            return raw, None

        @app.post("/token")
        async def token(request: Request) -> Response:
            raw = await request.body()
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            claims = _jwt_claims(form.get("assertion", ""))
            if form.get("grant_type") != (
                    "urn:ietf:params:oauth:grant-type:jwt-bearer") or claims is None:
                return answer(request, raw, 400, {"error": "invalid_grant",
                                                  "error_description": "Invalid JWT."})
            access = "standin." + secrets.token_urlsafe(24)
            with self._lock:
                self.access_tokens.add(access)
            return answer(request, raw, 200, {"access_token": access, "expires_in": 3600,
                                              "token_type": "Bearer"})

        @app.post("/v1/projects/{project}/messages:send")
        async def send(project: str, request: Request) -> Response:
            raw, refused = await guarded(request)
            if refused is not None:
                return refused
            try:
                message = json.loads(raw)["message"]
                assert isinstance(message, dict)
            except (ValueError, KeyError, TypeError, AssertionError):
                return answer(request, raw, 400, _error(400, "INVALID_ARGUMENT",
                                                        "INVALID_ARGUMENT", "No message."))
            targets = [k for k in ("token", "topic", "condition") if k in message]
            problem = None
            if len(targets) != 1:
                problem = "Exactly one of token, topic or condition is required."
            elif "topic" in message and not TOPIC.match(message["topic"]):
                problem = "Invalid topic name."
            elif len(json.dumps(message.get("data", {})).encode()) + len(json.dumps(
                    message.get("notification", {})).encode()) > MAX_PAYLOAD_BYTES:
                problem = "Message is too big."
            elif not _https_image(message):
                problem = "The notification image must be an https URL."
            if problem is not None:
                return answer(request, raw, 400, _error(400, "INVALID_ARGUMENT",
                                                        "INVALID_ARGUMENT", problem))
            bad = self.bad_tokens.get(message.get("token", ""))
            if bad == "UNREGISTERED":
                return answer(request, raw, 404, _error(404, "NOT_FOUND", "UNREGISTERED",
                                                        "Requested entity was not found."))
            if bad == "INVALID_ARGUMENT":
                return answer(request, raw, 400, _error(
                    400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token"))
            name = f"projects/{project}/messages/{secrets.randbelow(10**16)}"
            return answer(request, raw, 200, {"name": name})

        @app.post("/v1/projects/{project}/registrations/{token}/topicSubscriptions")
        async def subscribe(project: str, token: str, request: Request) -> Response:
            raw, refused = await guarded(request)
            if refused is not None:
                return refused
            topic = request.query_params.get("topic_name", "")
            await asyncio.sleep(self.registration_delay_s)
            return self._registration(request, raw, token, topic, subscribe=True, answer=answer)

        @app.delete("/v1/projects/{project}/registrations/{token}/topicSubscriptions/{topic}")
        async def unsubscribe(project: str, token: str, topic: str, request: Request) -> Response:
            raw, refused = await guarded(request)
            if refused is not None:
                return refused
            return self._registration(request, raw, token, topic, subscribe=False,
                                      answer=answer)

        @app.get("/_standin/received")
        async def received() -> JSONResponse:
            return JSONResponse(list(self.received))

        @app.get("/_standin/subscriptions")
        async def subscriptions() -> JSONResponse:
            with self._lock:
                return JSONResponse({t: sorted(s) for t, s in self.subscriptions.items()})

        @app.post("/_standin/faults")
        async def faults(request: Request) -> JSONResponse:
            spec = await request.json()
            self.fail(int(spec["status"]), int(spec.get("times", 1)), str(spec.get("path", "")),
                      spec.get("retry_after"))
            return JSONResponse({"ok": True})

        @app.post("/_standin/tokens/{token}")
        async def mark(token: str, request: Request) -> JSONResponse:
            self.mark_token(token, str((await request.json()).get("state", "")))
            return JSONResponse({"ok": True})

        @app.get("/healthz")
        async def healthz() -> JSONResponse:
            return JSONResponse({"status": "ok"})

        return app

    def _registration(self, request: Request, raw: bytes, token: str, topic: str, *,
                      subscribe: bool, answer: Callable[..., Response]) -> Response:
        if not TOPIC.match(topic):
            return answer(request, raw, 400, _error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                                    "Invalid topic name."))
        bad = self.bad_tokens.get(token)
        if bad == "UNREGISTERED":
            return answer(request, raw, 404, _error(404, "NOT_FOUND", "UNREGISTERED",
                                                    "Requested entity was not found."))
        if bad == "INVALID_ARGUMENT":
            return answer(request, raw, 400, _error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                                    "Invalid registration token."))
        with self._lock:
            if subscribe:
                self.subscriptions.setdefault(topic, set()).add(token)
            else:
                self.subscriptions.get(topic, set()).discard(token)
        return answer(request, raw, 200, {})


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The claims of a JWT (the signature is not checked: a stand-in, not a gatekeeper)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def write_service_account(path: Path, token_uri: str, project_id: str = DEFAULT_PROJECT) -> Path:
    """A service-account JSON with a freshly generated RSA key whose token_uri is `token_uri`.

    Kept when it exists already (same key across runs), but its token_uri is brought up to
    date (the stand-in's port may have changed).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if path.exists():
        data = json.loads(path.read_text())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        data = {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": f"crieur-push@{project_id}.iam.gserviceaccount.com",
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        }
    data["token_uri"] = token_uri
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def setup(data_dir: Path) -> dict[str, str]:
    """`make run`: without FCM credentials, the push service talks to this stand-in."""
    if os.environ.get("CRIEUR_FCM_CREDENTIALS") or os.environ.get(
            "GOOGLE_APPLICATION_CREDENTIALS"):
        return {}
    port = int(os.environ.get("CRIEUR_FCM_STANDIN_PORT", DEFAULT_PORT))
    base = f"http://127.0.0.1:{port}"
    credentials = write_service_account(data_dir / "standins" / CREDENTIALS_FILE,
                                        f"{base}/token")
    return {"CRIEUR_FCM_STANDIN": "1", "CRIEUR_FCM_CREDENTIALS": str(credentials),
            "CRIEUR_FCM_URL": base, "CRIEUR_DEMO_PHONES": "70299"}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["setup"]:
        data_dir = Path(args[1] if len(args) > 1 else os.environ.get("CRIEUR_DATA_DIR", "var"))
        # The launcher reads this last line: settings for the services it starts next.
        print(json.dumps(setup(data_dir)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    data = Path(os.environ.get("CRIEUR_DATA_DIR", "var"))
    parser.add_argument("--dir", type=Path, default=data / "standins")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("CRIEUR_FCM_STANDIN_PORT", DEFAULT_PORT)))
    options = parser.parse_args(args)
    standin = FcmStandin(options.dir)
    uvicorn.run(standin.app, host=options.host, port=options.port, log_config=None,
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
