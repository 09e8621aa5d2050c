"""Attachments staff upload (an image or a PDF), kept in the NATS object store `attachments`.

The type is judged by the file's first bytes, never by its name or the declared
Content-Type: only PNG, JPEG, WebP and PDF are taken. A notice draft names an uploaded
attachment by its id; the front door turns the id into the notice's attachment (name,
public URL, media type, size) before the notice is stored, so bus readers see a plain
attachment with a URL, and `id` says it is hosted here.

Each commune's attachments together stay under CRIEUR_ATTACHMENTS_QUOTA_BYTES (413 past
it). An attachment that no notice names (uploaded for a preview, or never used, or dropped
by a correction) is deleted once ORPHAN_AFTER old, by the notices service's hourly sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from fastapi import Request
from nats.js import JetStreamContext
from nats.js.api import ObjectInfo, ObjectMeta
from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from crieur.bus import ensure_stream
from schemas.notice import AttachmentInput, NoticeDraft, NoticePatch
from schemas.streams import ATTACHMENTS, ATTACHMENTS_BUCKET
from services.notices import errors
from services.notices.errors import ApiError

log = structlog.get_logger("crieur.notices.attachments")

ATTACHMENT_ID = re.compile(r"^[a-z0-9]{8,32}$")
# The staff compose form's preview step carries the file too (staff_pages.py).
UPLOAD_PATH = re.compile(
    r"^/(?:api/v1/communes/[^/]+/attachments/?|staff/communes/[^/]+/preview)$")


# An upload no notice names is kept this long: time for staff to preview, then publish.
ORPHAN_AFTER = timedelta(hours=24)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_upload(path: str) -> bool:
    """The upload route, whose body limit is CRIEUR_ATTACHMENT_MAX_BYTES."""
    return UPLOAD_PATH.match(path) is not None

# (media type, file extension) by the signature the file starts with.
PNG, JPEG, WEBP, PDF = "image/png", "image/jpeg", "image/webp", "application/pdf"
EXTENSIONS = {PNG: "png", JPEG: "jpg", WEBP: "webp", PDF: "pdf"}


def sniff(data: bytes) -> str | None:
    """The media type the content is (PNG, JPEG, WebP or PDF), or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    # PDF readers accept the header within the first 1024 bytes; we want it first.
    if data.startswith(b"%PDF-"):
        return PDF
    return None


# What a staff form carries besides its file (title, text, links), over the file's limit.
FORM_MARGIN = 256 * 1024

# A phone's photo is 4,000 px and 5-12 MB; a notice shows it a few hundred pixels wide.
LONG_SIDE = 2000
# Pillow's own guard refuses larger images as decompression bombs (a 20 MB PNG of one colour
# can claim billions of pixels); 100 Mpx is more than any camera's photo.
MAX_PIXELS = 100_000_000


class UnreadableImage(ValueError):
    """The file starts like an image but cannot be decoded as one."""


def reduce_image(data: bytes, media_type: str) -> bytes:
    """The image at most LONG_SIDE pixels on its long side, re-encoded without its metadata.

    Every image is re-encoded, small ones too: EXIF carries where a photo was taken (GPS),
    and a resident downloading the notice's photo must not learn where the secretary lives.
    The EXIF orientation is applied first, so the photo keeps the way it was shot.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UnreadableImage("too many pixels")
            image.load()
            shown = ImageOps.exif_transpose(image)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            ValueError) as error:
        raise UnreadableImage(str(error)) from error
    shown.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    icc = shown.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if media_type == JPEG:
        if shown.mode not in ("RGB", "L"):
            shown = shown.convert("RGB")
        shown.save(out, "JPEG", quality=85, optimize=True, **extra)
    elif media_type == WEBP:
        shown.save(out, "WEBP", quality=85, **extra)
    else:
        shown.save(out, "PNG", optimize=True, **extra)
    return out.getvalue()


async def reduced(data: bytes, media_type: str) -> bytes:
    """reduce_image for images (PDFs as they are), off the event loop: decoding takes time."""
    if media_type == PDF:
        return data
    return await asyncio.to_thread(reduce_image, data, media_type)


def clean_filename(raw: str, media_type: str) -> str:
    """A name that shows and is safe in a header: no path, no control character, right extension."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in "CZ" or c == " ")
    name = " ".join(name.split())
    wanted = EXTENSIONS[media_type]
    allowed = {wanted, "jpeg"} if media_type == JPEG else {wanted}
    stem, dot, ext = name.rpartition(".")
    if not (dot and ext.lower() in allowed):
        stem, ext = name, wanted
    stem = stem.strip(". ")[:150]
    if not any(unicodedata.category(c)[0] in "LN" for c in stem):
        stem = "piece-jointe"
    return f"{stem}.{ext}"


class StoredAttachment(BaseModel):
    """What POST /attachments answers, and what the object's description keeps."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    commune: str
    filename: str
    content_type: str
    size: int = Field(ge=0)
    uploaded_at: datetime
    # Where residents download it (CRIEUR_PUBLIC_URL/communes/{insee}/attachments/{id}).
    url: str = ""


@dataclass
class Attachments:
    """The object store bucket; one object per attachment, named by its id."""

    store: ObjectStore
    public_url: str
    # Every commune's attachments together, in bytes (CRIEUR_ATTACHMENTS_QUOTA_BYTES); 0: none.
    quota_bytes: int = 0
    clock: Callable[[], datetime] = field(default=_utcnow)

    @classmethod
    async def open(cls, js: JetStreamContext, public_url: str, quota_bytes: int = 0,
                   clock: Callable[[], datetime] = _utcnow) -> Attachments:
        """The bucket (created here on a developer's machine; by `crieur provision` in
        production, where NotProvisionedError says it is missing)."""
        await ensure_stream(js, ATTACHMENTS)
        return cls(await js.object_store(ATTACHMENTS_BUCKET), public_url.rstrip("/"),
                   quota_bytes, clock)

    async def records(self) -> list[StoredAttachment]:
        """Every attachment stored, of every commune."""
        return [r for r in (_read(i) for i in await _listing(self.store)) if r is not None]

    async def used(self, commune: str) -> int:
        """The bytes this commune's attachments take."""
        return sum(r.size for r in await self.records() if r.commune == commune)

    async def sweep_orphans(self, referenced: Iterable[str], older_than: datetime) -> int:
        """Delete the attachments uploaded before `older_than` that no notice names."""
        return await sweep_orphans(self.store, set(referenced), older_than)

    def url(self, commune: str, attachment_id: str) -> str:
        return f"{self.public_url}/communes/{commune}/attachments/{attachment_id}"

    async def put(self, commune: str, filename: str, data: bytes,
                  media_type: str) -> StoredAttachment:
        if self.quota_bytes:
            # Counted before the write, so two uploads at once may both pass: the quota is
            # there to stop one commune filling the store, not to account to the byte.
            used = await self.used(commune)
            if used + len(data) > self.quota_bytes:
                log.warning("attachments_quota_reached", commune=commune, used=used,
                            quota=self.quota_bytes, size=len(data))
                raise ApiError(errors.ATTACHMENTS_QUOTA, quota=self.quota_bytes, used=used)
        attachment_id = secrets.token_hex(8)
        stored = StoredAttachment(
            id=attachment_id, commune=commune, filename=filename, content_type=media_type,
            size=len(data), uploaded_at=self.clock(),
            url=self.url(commune, attachment_id))
        await self.store.put(attachment_id, data, meta=ObjectMeta(
            name=attachment_id, description=stored.model_dump_json()))
        return stored

    async def info(self, commune: str, attachment_id: str) -> StoredAttachment | None:
        """The attachment's record if it exists and belongs to this commune."""
        if not ATTACHMENT_ID.match(attachment_id):
            return None
        try:
            info = await self.store.get_info(attachment_id)
        except (ObjectNotFoundError, NotFoundError):
            return None
        return self._record(info.description, commune)

    async def get(self, commune: str, attachment_id: str) -> tuple[StoredAttachment, bytes] | None:
        if not ATTACHMENT_ID.match(attachment_id):
            return None
        try:
            result = await self.store.get(attachment_id)
        except (ObjectNotFoundError, NotFoundError):
            return None
        record = self._record(result.info.description if result.info else None, commune)
        if record is None or result.data is None:
            return None
        return record, bytes(result.data)

    def _record(self, description: str | None, commune: str) -> StoredAttachment | None:
        try:
            record = StoredAttachment.model_validate_json(description or "")
        except ValueError:
            return None
        return record if record.commune == commune else None

    async def as_notice_attachment(self, commune: str, attachment_id: str) -> AttachmentInput:
        record = await self.info(commune, attachment_id)
        if record is None:
            raise KeyError(attachment_id)
        return AttachmentInput(id=record.id, name=record.filename,
                               url=self.url(commune, record.id),
                               media_type=record.content_type, size=record.size)


def _read(info: ObjectInfo) -> StoredAttachment | None:
    if info.deleted:
        return None
    try:
        return StoredAttachment.model_validate_json(info.description or "")
    except ValueError:
        return None


async def _listing(store: ObjectStore) -> list[ObjectInfo]:
    try:
        return await store.list(ignore_deletes=True)
    except NotFoundError:  # nats-py's answer for an empty store
        return []


async def sweep_orphans(store: ObjectStore, referenced: set[str], older_than: datetime) -> int:
    """Delete every attachment uploaded before `older_than` whose id is not in `referenced`
    (an object whose record cannot be read is left alone). Returns how many went."""
    swept = 0
    for info in await _listing(store):
        record = _read(info)
        if record is None or record.id in referenced or record.uploaded_at >= older_than:
            continue
        with contextlib.suppress(ObjectNotFoundError, NotFoundError):  # another front door
            await store.delete(info.name)
            swept += 1
            log.info("attachment_orphan_deleted", attachment_id=record.id,
                     commune=record.commune, size=record.size)
    return swept


async def sweep_unreferenced(js: JetStreamContext, referenced: set[str], now: datetime) -> int:
    """The notices service's hourly sweep: orphans older than ORPHAN_AFTER go. Nothing is
    created: without the store (never provisioned, nothing uploaded) there is nothing to do."""
    try:
        store = await js.object_store(ATTACHMENTS_BUCKET)
    except NotFoundError:
        return 0
    return await sweep_orphans(store, referenced, now - ORPHAN_AFTER)


async def attachments_of(request: Request) -> Attachments:
    """The bucket, opened at first use (the front door serves notices without it)."""
    store: Attachments | None = getattr(request.app.state, "attachments", None)
    if store is None:
        c = request.app.state.context
        try:
            store = await Attachments.open(c.store.js, c.settings.public_url,
                                           c.settings.attachments_quota_bytes, c.clock)
        except Exception as error:  # not provisioned, or NATS away: say so, keep serving
            log.warning("attachments_unavailable", error=repr(error)[:300])
            raise ApiError(errors.ATTACHMENTS_UNAVAILABLE) from error
        request.app.state.attachments = store
    return store


D = TypeVar("D", NoticeDraft, NoticePatch)


async def resolve(request: Request, commune: str, draft: D) -> D:
    """The draft with each attachment id replaced by the attachment it names (422 if unknown)."""
    given = draft.attachments
    if not given or all(not isinstance(a, str) for a in given):
        return draft
    store = await attachments_of(request)
    resolved: list[AttachmentInput] = []
    for i, item in enumerate(given):
        if not isinstance(item, str):
            resolved.append(item)
            continue
        try:
            resolved.append(await store.as_notice_attachment(commune, item))
        except KeyError as error:
            field = [{"field": f"attachments.{i}",
                      "message": "no attachment with this id in this commune"}]
            raise ApiError(errors.INVALID, message=f"attachments.{i}: unknown attachment",
                           fields=field) from error
    return draft.model_copy(update={"attachments": tuple(resolved)})


@dataclass(frozen=True)
class Resolver:
    """application.Attach for a request: the bucket is opened once per app (attachments_of)."""

    request: Request

    async def __call__(self, commune: str, draft: D, /) -> D:
        return await resolve(self.request, commune, draft)
