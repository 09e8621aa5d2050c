"""Every error the front door answers, in one place: a stable code, an HTTP status, a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from schemas.notice import UNION_TAGS

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
NOTICE_NOT_SENT = ErrorKind(
    "notice_not_sent", 404, "this notice was never sent, so there is no CAP message for it"
)
BAD_REQUEST = ErrorKind("bad_request", 400, "the request could not be read")
METHOD_NOT_ALLOWED = ErrorKind("method_not_allowed", 405, "this method is not allowed here")
NOTICE_MOVED_ON = ErrorKind(
    "notice_moved_on", 412,
    "the notice is no longer the version named in If-Match: reload it and try again",
)
NOTICE_CHANGED = ErrorKind(
    "notice_changed", 409, "the notice changed since you read it: reload it and try again"
)
NOTICE_WITHDRAWN = ErrorKind("notice_withdrawn", 409, "the notice is withdrawn")
NOTICE_NOT_PENDING = ErrorKind("notice_not_pending", 409, "the notice is not pending approval")
OWN_APPROVAL = ErrorKind(
    "own_approval", 403, "the author of a notice cannot approve it: another member of staff must"
)
BODY_TOO_LARGE = ErrorKind("body_too_large", 413, "the request body is larger than {limit} bytes")
INVALID = ErrorKind("invalid", 422, "the request is not valid")
ATTACHMENT_TOO_LARGE = ErrorKind(
    "attachment_too_large", 413, "the attachment is larger than {limit} bytes"
)
ATTACHMENTS_QUOTA = ErrorKind(
    "attachments_quota", 413, "this commune's attachments would take more than its quota of "
    "{quota} bytes ({used} bytes stored); attachments that no notice names are deleted 24 "
    "hours after their upload"
)
ATTACHMENT_TYPE = ErrorKind(
    "attachment_type", 415, "an attachment must be a PNG, JPEG or WebP image or a PDF file "
    "(judged by its content)"
)
JSON_REQUIRED = ErrorKind(
    "json_required", 415, "this route takes a JSON body: send it with "
    "Content-Type: application/json"
)
ATTACHMENTS_UNAVAILABLE = ErrorKind(
    "attachments_unavailable", 503, "attachments cannot be stored or read right now; retry"
)
ATTACHMENT_NOT_FOUND = ErrorKind("attachment_not_found", 404, "no such attachment in this commune")
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
BUS_TIMEOUT = ErrorKind(
    "bus_timeout", 503,
    "the notice store did not confirm in time: the change may have been saved. Retry with the "
    "same Idempotency-Key (a retry without one may publish twice); reload a notice before "
    "retrying a correction or a withdrawal",
)
INTERNAL = ErrorKind("internal", 500, "something went wrong on our side; it has been logged")

# Errors raised by the framework (bad JSON, unknown route, wrong method) in our words.
_BY_STATUS = {kind.status: kind for kind in (BAD_REQUEST, NOT_FOUND, METHOD_NOT_ALLOWED)}


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
    # 503: the caller may come back; say when.
    headers = {"Retry-After": "5"} if error.kind.status == 503 else None
    return JSONResponse(error_body(error.kind.code, error.message, error.fields),
                        status_code=error.kind.status, headers=headers)


async def on_bus_error(_: Request, error: Exception) -> JSONResponse:
    """NATS away (a restart, a network cut): the caller may retry; nothing was half-written.

    A write whose confirmation timed out is answered BUS_TIMEOUT by the route instead.
    """
    log.warning("bus_unavailable", error=repr(error))
    kind = BUS_UNAVAILABLE
    return JSONResponse(error_body(kind.code, kind.message), status_code=kind.status,
                        headers={"Retry-After": "5"})


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path (Starlette names only the first route's)."""
    def answered(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.routes)

    return ", ".join(m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if answered(m))


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    """The framework's own refusals (unreadable body, unknown route, wrong method)."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 405:
        error.headers = dict(error.headers or {}) | {"Allow": _allowed_methods(request)}
    kind = _BY_STATUS.get(error.status_code)
    code = kind.code if kind else f"http_{error.status_code}"
    message = kind.message if kind else str(error.detail)
    if error.status_code == 400 and isinstance(error.detail, str):
        message = f"{message}: {error.detail}"
    return JSONResponse(error_body(code, message), status_code=error.status_code,
                        headers=error.headers)


async def on_unexpected_error(_: Request, error: Exception) -> JSONResponse:
    """A bug: logged with its stack, answered in the documented shape."""
    log.error("unexpected_error", exc_info=error)
    return JSONResponse(error_body(INTERNAL.code, INTERNAL.message), status_code=INTERNAL.status)


# pydantic's words for Python types, in the words of a JSON caller.
_TYPE_WORDS = {
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "enum": "must be one of: {expected}",
    "missing": "is required",
    "extra_forbidden": "unknown field",
}


def _message(err: dict[str, Any], field: str) -> str:
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind].format(**ctx)
    if kind in ("too_long", "too_short", "string_too_long", "string_too_short"):
        # pydantic says "items" even for the characters of a text: say what is counted.
        longest = kind.endswith("too_long")
        bound = ctx.get("max_length") if longest else ctx.get("min_length")
        if isinstance(err.get("input"), str):
            unit = "character" if bound == 1 else "characters"
        else:
            unit = "entry" if bound == 1 else "entries"
        return f"must have at {'most' if longest else 'least'} {bound} {unit}"
    if kind == "string_pattern_mismatch" and field.split(".")[-1] == "insee":
        return "must be an INSEE code (five characters: 70299, 2A004)"
    if kind == "json_invalid":
        return f"is not valid JSON ({ctx.get('error', 'unreadable')})"
    # A whole-model check (the validity window) names its fields in its message.
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def field_errors(errors: Any) -> list[dict[str, str]]:
    """pydantic's errors as {field, message}, the field named as the caller wrote it."""
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            # FastAPI puts the byte offset in `loc`: the field is the body as a whole.
            loc = []
        names = [str(p) for p in loc
                 if p not in ("body", "query", "path", "header") and p not in UNION_TAGS]
        field = ".".join(names) or "body"
        out.append({"field": field, "message": _message(err, field)})
    return out


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = field_errors(error.errors())
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return JSONResponse(error_body(INVALID.code, message, fields), status_code=INVALID.status)
