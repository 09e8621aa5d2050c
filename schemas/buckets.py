"""The channels' own KV buckets: defined here so `crieur provision` creates them.

Each channel service opens its bucket at start-up (creating it only on a developer's machine,
CRIEUR_ENSURE_STREAMS=true); in production the provisioning step makes them, with the same
replica count as every stream (CRIEUR_NATS_REPLICAS), and the channel's NATS user may only
read and write its keys.
"""

from __future__ import annotations

from schemas.streams import DAY, MIB, Bucket

# Subscribers' buckets are written from the internet (a code or a link is asked for before
# anyone is confirmed): a bound keeps a flood of sign-ups from filling the NATS disk that
# the notices live on. One subscriber takes about 500 bytes on disk (a few hundred of JSON,
# the key and the message's own), so 256 MiB holds about half a million per channel, far
# beyond every village of a département together. NATS reserves each limit in the server's
# max_file_store (deploy/nats), so a larger one must fit there too (tests/unit/deploy).
SUBSCRIBERS_MAX_BYTES = 256 * MIB

EMAIL_SUBSCRIBERS = Bucket(
    "email_subscribers",
    "Email subscribers, key = keyed hash of the address; the address is only here",
    # Read at send time while the live index is not proven current, and for each change:
    # a direct get skips the JSON API round of a plain get.
    direct=True,
    max_bytes=SUBSCRIBERS_MAX_BYTES,
)

PUSH_DEVICES = Bucket("devices", "Phones of the push channel, key = SHA-256 of the FCM token",
                      max_bytes=SUBSCRIBERS_MAX_BYTES)

SMS_SUBSCRIBERS = Bucket(
    "sms_subscribers",
    "SMS subscribers, key = keyed hash of the number; the number is only here",
    max_bytes=SUBSCRIBERS_MAX_BYTES,
)
# Provider message id -> the job it carried, for delivery receipts (a week is plenty).
SMS_MESSAGES = Bucket("sms_messages", "SMS provider message id -> notice, version, commune",
                      ttl=7 * DAY)

# Residents' limits and the code budget, counted by every process of the SMS channel
# (crieur.channel.ratelimit.SharedLimit): key <channel>.<limit>.<hour window>.<id>, ids
# keyed hashes or number prefixes. Two hours: a window is one, then it may go.
SMS_LIMITS = Bucket("sms_limits", "SMS subscription limits and code budget, per hour window",
                    ttl=2 * 3600)

# The same for the email channel (confirmation mails per client and per mailbox) and the
# push channel (device registrations per client): key <channel>.<limit>.<window>.<id>.
EMAIL_LIMITS = Bucket("email_limits", "Email subscription limits, per hour window",
                      ttl=2 * 3600)
PUSH_LIMITS = Bucket("push_limits", "Push device registration limits, per hour window",
                     ttl=2 * 3600)

# A browser's push subscription is a capability URL: it is kept only here.
WEBPUSH_SUBSCRIPTIONS = Bucket(
    "webpush_subscriptions",
    "Browsers' Web Push subscriptions, key = SHA-256 of the endpoint; the endpoint is only here",
    max_bytes=SUBSCRIBERS_MAX_BYTES,
)

CHANNEL_BUCKETS: tuple[Bucket, ...] = (EMAIL_SUBSCRIBERS, EMAIL_LIMITS, PUSH_DEVICES,
                                       PUSH_LIMITS, SMS_SUBSCRIBERS, SMS_MESSAGES, SMS_LIMITS,
                                       WEBPUSH_SUBSCRIPTIONS)
