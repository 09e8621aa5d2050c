"""The email settings turn into the SMTP client the operator asked for."""

from __future__ import annotations


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
