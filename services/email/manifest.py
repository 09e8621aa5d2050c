"""The email channel, declared once (crieur.channel.manifest)."""

from __future__ import annotations

from crieur.channel.manifest import Manifest, StandIn
from schemas.buckets import EMAIL_LIMITS, EMAIL_SUBSCRIBERS
from schemas.deliveries import Channel
from schemas.previews import EmailPreview
from services.email.service import EmailService
from services.email.settings import EmailSettings

MANIFEST = Manifest(
    channel=Channel.EMAIL, settings=EmailSettings,
    service=EmailService,
    port_env="CRIEUR_EMAIL_HTTP_PORT", default_port=8085,
    buckets=(EMAIL_SUBSCRIBERS, EMAIL_LIMITS), preview=EmailPreview,
    stand_in=StandIn("smtp", "crieur_dev.standins.smtp", "CRIEUR_SMTP_PORT", 2525))
