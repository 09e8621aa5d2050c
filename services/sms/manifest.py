"""The SMS channel, declared once (crieur.channel.manifest)."""

from __future__ import annotations

from crieur.channel.manifest import Manifest, StandIn
from schemas.buckets import SMS_LIMITS, SMS_MESSAGES, SMS_SUBSCRIBERS
from schemas.deliveries import Channel
from schemas.previews import SmsPreview
from services.sms.service import SmsService
from services.sms.settings import SmsSettings

MANIFEST = Manifest(
    channel=Channel.SMS, settings=SmsSettings, service=SmsService,
    port_env="CRIEUR_SMS_HTTP_PORT", default_port=8086,
    buckets=(SMS_SUBSCRIBERS, SMS_MESSAGES, SMS_LIMITS), preview=SmsPreview,
    stand_in=StandIn("sms-standin", "crieur_dev.standins.sms", "CRIEUR_SMS_STANDIN_PORT", 8087))
