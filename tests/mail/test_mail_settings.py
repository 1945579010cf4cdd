"""The mail:/smtp: settings, secrets from the environment, and STARTTLS + login on a real server."""

from __future__ import annotations


import pytest
from aiosmtpd.smtp import AuthResult
from mailtest import Recorder, add_subscribers, config_of, make_project

from projects import self_signed, smtp_sink

from pressroom.errors import ConfigError, MailError
from pressroom.mail import send_campaign
from pressroom.mail.settings import mail_settings, smtp_settings


def test_defaults_follow_the_publication(outbox_project):
    s = mail_settings(config_of(outbox_project))
    assert (s.list_id, s.unsubscribe_url, s.unsubscribe_mailto, s.view_url) == (
        "facial-yoga.juvenology.co.uk", "https://www.juvenology.co.uk/unsubscribe",
        "unsubscribe@juvenology.co.uk", "https://www.juvenology.co.uk/newsletters/")
    assert (s.soft_bounce_limit, s.retry_window) == (3, 3600.0)
    assert s.unsubscribe_link("T") == "https://www.juvenology.co.uk/unsubscribe?t=T"
    assert smtp_settings(config_of(outbox_project)) is None


def test_smtp_defaults(tmp_path):
    s = smtp_settings(config_of(make_project(tmp_path, {"host": "smtp.example.com"})))
    assert (s.port, s.security, s.timeout, s.rate, s.hourly_cap, s.dkim) == (
        587, "starttls", 30.0, None, None, None)


@pytest.mark.parametrize("smtp, mail, message", [
    ({"host": "h", "port": 70000}, {}, "'smtp.port' must be at most 65535, got 70000"),
    ({"host": "h", "port": "25"}, {}, "'smtp.port' must be a whole number, got '25'"),
    ({"host": "h", "security": "tls"}, {},
     "'smtp.security' must be one of starttls, ssl, none; got 'tls'"),
    ({"host": "h", "password": "secret"}, {}, "unknown key 'smtp.password'"),
    ({"host": "h", "rate": 0}, {}, "'smtp.rate' must be more than 0 messages per second"),
    ({"host": "h", "dkim": {"domain": "d", "selector": "s", "key_file": "missing.pem"}}, {},
     "cannot read the DKIM key"),
    (None, {"store": "output/subscribers.sqlite3"}, "'mail.store' must be outside the output "
                                                    "folder"),
    (None, {"unsubscribe_url": "http://example.com/u"},
     "'mail.unsubscribe_url' must be an https:// URL (RFC 8058 one-click unsubscribe needs HTTPS)"),
    (None, {"list_id": "no spaces allowed"}, "'mail.list_id' must look like a domain name"),
    (None, {"soft_bounce_limit": 0}, "'mail.soft_bounce_limit' must be at least 1, got 0"),
])
def test_bad_settings_name_the_line(tmp_path, smtp, mail, message):
    project = make_project(tmp_path, smtp, mail)
    lines = (project / "content" / "publication.yaml").read_text().splitlines()
    key = message.split("'")[1].split(".")[-1] if "'" in message else "key_file"
    expected_line = next(i for i, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:"))
    with pytest.raises(ConfigError) as caught:
        config = config_of(project)
        smtp_settings(config)
        mail_settings(config)
    assert caught.value.line == expected_line
    assert message in caught.value.message


def test_username_without_password_env_is_a_clear_error(tmp_path):
    project = make_project(tmp_path, {"host": "127.0.0.1", "username": "news"})
    with pytest.raises(MailError, match="smtp.username is set but PRESSROOM_SMTP_PASSWORD is not"):
        send_campaign(config_of(project), "01-welcome")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A STARTTLS-only server requiring login, with a self-signed certificate for 127.0.0.1."""
    context, cert, key = self_signed(tmp_path_factory.mktemp("tls"))

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"news", b"s3cret")
        return AuthResult(success=ok, handled=False)

    recorder = Recorder()
    with smtp_sink(recorder, tls_context=context, require_starttls=True,
                   authenticator=authenticate, auth_required=True) as controller:
        controller.recorder, controller.cert = recorder, cert
        yield controller


def test_starttls_and_login(tmp_path, tls_server, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert))
    project = make_project(tmp_path, {"host": "127.0.0.1", "port": tls_server.port,
                                      "username": "news", "timeout": 5})
    addresses = add_subscribers(project, 2)
    monkeypatch.setenv("PRESSROOM_SMTP_PASSWORD", "wrong")
    refused = send_campaign(config_of(project), "01-welcome")
    assert refused.paused.startswith(f"SMTP login as news at 127.0.0.1:{tls_server.port} failed "
                                     "(535 5.7.8 Authentication credentials invalid)")
    monkeypatch.setenv("PRESSROOM_SMTP_PASSWORD", "s3cret")
    result = send_campaign(config_of(project), "01-welcome")
    assert result.counts["sent"] == 2 and tls_server.recorder.by_recipient() == dict.fromkeys(
        addresses, 1)


def test_untrusted_certificate_pauses_with_a_clear_message(tmp_path, tls_server, monkeypatch):
    monkeypatch.setenv("PRESSROOM_SMTP_PASSWORD", "s3cret")
    project = make_project(tmp_path, {"host": "127.0.0.1", "port": tls_server.port,
                                      "username": "news", "timeout": 5})
    add_subscribers(project, 1)
    result = send_campaign(config_of(project), "01-welcome")
    assert result.paused.startswith(f"the TLS certificate of 127.0.0.1:{tls_server.port} is not "
                                    "valid (self-signed certificate)")
