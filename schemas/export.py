"""Writes the JSON Schema of every bus message into schemas/json/ (`make schemas`).

Consumers in other languages read these; tests/unit/test_schemas.py fails when
a model changed and the files were not exported again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.channels import ChannelHttpReply, ChannelHttpRequest
from schemas.commune import Commune
from schemas.deadletters import DeadLetter
from schemas.deliveries import DeliveryReport
from schemas.events import NoticeCorrected, NoticePublished, NoticeWithdrawn
from schemas.jobs import Job, JobGroup
from schemas.notice import Notice
from schemas.previews import (
    ChannelUnavailable,
    EmailPreview,
    PanelPreview,
    PreviewRequest,
    PushPreview,
    SmsPreview,
)

JSON_DIR = Path(__file__).parent / "json"

EXPORTED: dict[str, type[BaseModel]] = {
    "notice": Notice,
    "notice-published": NoticePublished,
    "notice-corrected": NoticeCorrected,
    "notice-withdrawn": NoticeWithdrawn,
    "delivery-report": DeliveryReport,
    "dead-letter": DeadLetter,
    "job": Job,
    "job-group": JobGroup,
    "commune": Commune,
    "channel-http-request": ChannelHttpRequest,
    "channel-http-reply": ChannelHttpReply,
    "preview-request": PreviewRequest,
    "preview-push": PushPreview,
    "preview-sms": SmsPreview,
    "preview-panel": PanelPreview,
    "preview-email": EmailPreview,
    "preview-unavailable": ChannelUnavailable,
}


def rendered() -> dict[str, str]:
    """File name -> the exact text it must hold."""
    return {
        f"{name}.schema.json": json.dumps(
            model.model_json_schema(mode="serialization"), indent=2, ensure_ascii=False,
            sort_keys=True,
        ) + "\n"
        for name, model in EXPORTED.items()
    }


def main() -> int:
    JSON_DIR.mkdir(exist_ok=True)
    for stale in JSON_DIR.glob("*.schema.json"):
        stale.unlink()
    for name, text in rendered().items():
        (JSON_DIR / name).write_text(text)
        print(f"wrote {JSON_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
