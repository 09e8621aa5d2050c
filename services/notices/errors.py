"""Every error the front door answers, in one place: a stable code, an HTTP status, a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = structlog.get_logger("crieur.notices.errors")


@dataclass(frozen=True)
class ErrorKind:
    code: str
    status: int
    message: str


UNAUTHORIZED = ErrorKind(
    "unauthorized", 401, "a valid staff token is required: Authorization: Bearer <token>"
)
COMMUNE_FORBIDDEN = ErrorKind("commune_forbidden", 403, "this token may not act for this commune")
NOTICE_NOT_FOUND = ErrorKind("notice_not_found", 404, "no such notice in this commune")
COMMUNE_NOT_FOUND = ErrorKind("commune_not_found", 404, "no such commune")
NOT_FOUND = ErrorKind("not_found", 404, "no such page")
NOTICE_CHANGED = ErrorKind(
    "notice_changed", 409, "the notice changed since you read it: reload it and try again"
)
NOTICE_WITHDRAWN = ErrorKind("notice_withdrawn", 409, "the notice is withdrawn")
BODY_TOO_LARGE = ErrorKind("body_too_large", 413, "the request body is larger than {limit} bytes")
INVALID = ErrorKind("invalid", 422, "the request is not valid")
COMMUNE_UNKNOWN = ErrorKind(
    "commune_unknown", 422, "insee: commune {insee} is not registered in Crieur"
)
INSEE_MALFORMED = ErrorKind(
    "insee_malformed", 422, "insee: {insee!r} is not an INSEE code (five characters: 70299, 2A004)"
)
IDEMPOTENCY_KEY_REUSED = ErrorKind(
    "idempotency_key_reused", 422, "Idempotency-Key was already used with a different request"
)
CHANNEL_UNAVAILABLE = ErrorKind(
    "channel_unavailable", 503, "the {channel} channel is not running; try again later"
)
CHANNEL_TIMEOUT = ErrorKind("channel_timeout", 504, "the {channel} channel did not answer in time")
CHANNEL_BAD_REPLY = ErrorKind(
    "channel_bad_reply", 502, "the {channel} channel gave an answer the front door cannot read"
)
BUS_UNAVAILABLE = ErrorKind(
    "bus_unavailable", 503, "the notice store is unreachable right now; nothing was saved, retry"
)


class ApiError(Exception):
    def __init__(self, kind: ErrorKind, *, fields: list[dict[str, str]] | None = None,
                 message: str | None = None, **params: Any) -> None:
        self.kind = kind
        self.message = message or kind.message.format(**params)
        self.fields = fields or []
        super().__init__(self.message)


def error_body(
    code: str, message: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


async def on_api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(error_body(error.kind.code, error.message, error.fields),
                        status_code=error.kind.status)


async def on_bus_error(_: Request, error: Exception) -> JSONResponse:
    """NATS away (a restart, a network cut): the caller may retry; nothing was half-written."""
    log.warning("bus_unavailable", error=repr(error))
    kind = BUS_UNAVAILABLE
    return JSONResponse(error_body(kind.code, kind.message), status_code=kind.status,
                        headers={"Retry-After": "5"})


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic's errors as {field, message}, the field named as the caller wrote it."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        # A whole-model check (the validity window) names its fields in its message.
        message = message.removeprefix("Value error, ")
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = field_errors(error.errors())
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(error_body(INVALID.code, message, fields), status_code=INVALID.status)
