"""The push channel, declared once (crieur.channel.manifest)."""

from __future__ import annotations

from crieur.channel.manifest import Manifest, StandIn
from schemas.buckets import PUSH_DEVICES, PUSH_LIMITS
from schemas.deliveries import Channel
from schemas.previews import PushPreview
from services.push.service import PushService
from services.push.settings import PushSettings

MANIFEST = Manifest(
    channel=Channel.PUSH, settings=PushSettings, service=PushService,
    port_env="CRIEUR_PUSH_HTTP_PORT", default_port=8084,
    buckets=(PUSH_DEVICES, PUSH_LIMITS), preview=PushPreview,
    stand_in=StandIn("fcm-standin", "crieur_dev.standins.fcm", "CRIEUR_FCM_STANDIN_PORT", 8083))
