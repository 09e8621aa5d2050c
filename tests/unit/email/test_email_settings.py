"""The email settings turn into the SMTP client the operator asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest


def test_settings_make_the_smtp_client_the_operator_asked_for() -> None:
    from services.email.sender import SmtpConfig
    from services.email.settings import EmailSettings, SmtpTls

    settings = EmailSettings(smtp_host="relay.example.org", smtp_port=465, smtp_tls="tls",
                             smtp_username="crieur", smtp_password="s3cret", smtp_pool=7,
                             smtp_from="avis@mairie.example.org", email_secret_key="k" * 40)
    config = SmtpConfig.from_settings(settings)
    assert (config.host, config.port, config.tls, config.pool) == (
        "relay.example.org", 465, SmtpTls.TLS, 7)
    client = config.client()
    assert (client.hostname, client.port, client.use_tls) == ("relay.example.org", 465, True)
    assert (config.username, config.password) == ("crieur", "s3cret")
    # EHLO names our From domain, not whatever this machine's resolver says.
    assert client.local_hostname == "mairie.example.org"



def test_the_relays_quota_is_the_email_ports_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.email.handlers import EmailPort
    from services.email.sender import SmtpConfig, SmtpPool
    from services.email.settings import EmailSettings

    def rate(**fields: Any) -> float | None:
        settings = EmailSettings(email_secret_key="k" * 40, **fields)
        port = EmailPort(settings=settings, registry=cast(Any, None), links=cast(Any, None),
                         pool=SmtpPool(SmtpConfig.from_settings(settings)),
                         clock=lambda: datetime.now(UTC))
        return port.rate_per_s

    assert rate() is None  # unset: only the pool limits
    assert rate(smtp_rate=20) == 20
    assert rate(smtp_rate_per_s=5) == 5  # the older name still works
    assert rate(smtp_rate=20, smtp_rate_per_s=5) == 20
    with pytest.raises(ValueError, match="greater than 0"):
        EmailSettings(email_secret_key="k" * 40, smtp_rate=0)
    monkeypatch.setenv("CRIEUR_SMTP_RATE", "12.5")
    assert rate() == 12.5
