"""The Web Push channel, declared once (crieur.channel.manifest)."""

from __future__ import annotations

from crieur.channel.manifest import Manifest, StandIn
from schemas.buckets import WEBPUSH_SUBSCRIPTIONS
from schemas.deliveries import Channel
from schemas.previews import WebpushPreview
from services.webpush.service import WebpushService
from services.webpush.settings import WebpushSettings

MANIFEST = Manifest(
    channel=Channel.WEBPUSH, settings=WebpushSettings, service=WebpushService,
    port_env="CRIEUR_WEBPUSH_HTTP_PORT", default_port=8090,
    buckets=(WEBPUSH_SUBSCRIPTIONS,), preview=WebpushPreview,
    stand_in=StandIn("webpush-standin", "crieur_dev.standins.webpush",
                     "CRIEUR_WEBPUSH_STANDIN_PORT", 8089))
