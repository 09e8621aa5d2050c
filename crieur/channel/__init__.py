"""The channel kit: what every channel (email, push, SMS) shares, so each writes only its own.

A channel brings three things: who its recipients are, how a notice is formatted for
them, and how it is sent. The kit brings the rest: following NOTICES, one job per
recipient on the JOBS work queue, workers that check a job is still worth sending and was
not sent already, backoff and dead letters, reports on DELIVERIES, and the channel's HTTP
routes over the front door's request-reply.

Errors a sender raises are in `crieur.channel.errors`; the job contract is `schemas.jobs`.
"""
