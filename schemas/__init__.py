"""Crieur's contracts: the models, subjects, streams and buckets every service shares.

Services import this package and never each other.
"""

from schemas.commune import Commune, CommuneSettings, Insee
from schemas.events import (
    SCHEMA_VERSION,
    EventKind,
    NoticeCorrected,
    NoticeEvent,
    NoticePublished,
    NoticeWithdrawn,
    parse_notice_event,
)
from schemas.notice import (
    CATEGORY_LABELS,
    PARIS,
    Attachment,
    Category,
    Link,
    Notice,
    NoticeDraft,
    NoticePatch,
    NoticeState,
    SentVersion,
)

__all__ = [
    "CATEGORY_LABELS",
    "PARIS",
    "SCHEMA_VERSION",
    "Attachment",
    "Category",
    "Commune",
    "CommuneSettings",
    "EventKind",
    "Insee",
    "Link",
    "Notice",
    "NoticeCorrected",
    "NoticeDraft",
    "NoticeEvent",
    "NoticePatch",
    "NoticePublished",
    "NoticeState",
    "NoticeWithdrawn",
    "SentVersion",
    "parse_notice_event",
]
