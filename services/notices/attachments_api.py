"""The attachment routes: staff upload an image or a PDF, residents download it.

What is taken and how it is kept is attachments.py; these routes only speak HTTP.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote, unquote

import structlog
from fastapi import APIRouter, Header, Query, Request, Response

from services.notices import errors
from services.notices.api import Ctx, Staff
from services.notices.application import registered_commune, staff_commune
from services.notices.attachments import (
    EXTENSIONS,
    JPEG,
    PDF,
    PNG,
    WEBP,
    StoredAttachment,
    UnreadableImage,
    attachments_of,
    clean_filename,
    reduced,
    sniff,
)
from services.notices.errors import ApiError

log = structlog.get_logger("crieur.notices.attachments")

UPLOAD_DESCRIPTION = (
    "An image (PNG, JPEG, WebP) or a PDF, judged by its content. Either "
    "`multipart/form-data` with the file in the field `file`, or the raw bytes as the body "
    "(then the name from `?filename=` or `Content-Disposition`). At most "
    "CRIEUR_ATTACHMENT_MAX_BYTES (413 beyond), and the commune's attachments together at most "
    "CRIEUR_ATTACHMENTS_QUOTA_BYTES (413 `attachments_quota` beyond; those no notice names "
    "are deleted 24 hours after upload). An image is reduced to 2,000 pixels on its long "
    "side and stored without its metadata (EXIF, GPS location). Answers 201 with its id: "
    "give it in a notice's `attachments`.")

router = APIRouter()


def _filename_from_disposition(value: str) -> str:
    found = re.search(r"filename\*=UTF-8''([^;]+)", value, re.IGNORECASE)
    if found:
        return unquote(found[1])
    found = re.search(r'filename="?([^";]+)"?', value, re.IGNORECASE)
    return found[1] if found else ""


@router.post("/api/v1/communes/{insee}/attachments", status_code=201,
             summary="Upload an attachment (image or PDF) for a notice",
             description=UPLOAD_DESCRIPTION, response_model=StoredAttachment,
             responses={413: {"description": "Larger than CRIEUR_ATTACHMENT_MAX_BYTES, or "
                                             "past the commune's attachments quota"},
                        415: {"description": "Not a PNG, JPEG, WebP or PDF file"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}},
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"],
                     "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
async def upload_attachment(
    c: Ctx, member: Staff, insee: str, request: Request,
    filename: Annotated[str, Query(max_length=200, description="The file's name")] = "",
    content_disposition: Annotated[str | None, Header()] = None,
) -> StoredAttachment:
    await staff_commune(c, insee, member)
    store = await attachments_of(request)
    limit = c.settings.attachment_max_bytes
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=10, max_part_size=limit + 1)
        except Exception as error:  # malformed multipart: the client's fault
            raise ApiError(errors.INVALID, message="the multipart body cannot be read",
                           fields=[{"field": "file", "message": "unreadable multipart body"}]
                           ) from error
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(errors.INVALID, message="file: missing",
                           fields=[{"field": "file", "message": "a file is required"}])
        data = await upload.read(limit + 1)
        name = upload.filename or filename
    else:
        data = await request.body()
        name = filename or _filename_from_disposition(content_disposition or "")
    if len(data) > limit:
        raise ApiError(errors.ATTACHMENT_TOO_LARGE, limit=limit)
    if not data:
        raise ApiError(errors.INVALID, message="file: empty",
                       fields=[{"field": "file", "message": "the file is empty"}])
    media_type = sniff(data)
    if media_type is None:
        raise ApiError(errors.ATTACHMENT_TYPE)
    try:
        data = await reduced(data, media_type)
    except UnreadableImage as error:
        raise ApiError(errors.ATTACHMENT_TYPE) from error
    stored = await store.put(insee, clean_filename(name, media_type), data, media_type)
    log.info("attachment_stored", attachment_id=stored.id, media_type=media_type,
             size=stored.size)
    return stored


@router.get("/communes/{insee}/attachments/{attachment_id}",
            summary="Download an attachment (public)",
            response_class=Response,
            responses={200: {"content": {t: {} for t in EXTENSIONS}}})
async def download_attachment(c: Ctx, request: Request, insee: str,
                              attachment_id: str) -> Response:
    await registered_commune(c, insee)
    found = await (await attachments_of(request)).get(insee, attachment_id)
    if found is None:
        raise ApiError(errors.ATTACHMENT_NOT_FOUND)
    record, data = found
    ascii_name = record.filename.encode("ascii", "replace").decode().replace('"', "")
    disposition = "inline" if record.content_type in (PNG, JPEG, WEBP, PDF) else "attachment"
    return Response(data, media_type=record.content_type, headers={
        "Content-Disposition": f"{disposition}; filename=\"{ascii_name}\"; "
                               f"filename*=UTF-8''{quote(record.filename)}",
        # An attachment never changes (a new file gets a new id).
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": f'"{record.id}"',
        "X-Content-Type-Options": "nosniff",
        # Opened in the browser, a file from staff runs nothing on our origin.
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    })
