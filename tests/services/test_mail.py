"""The [smtp] settings and the mail sender, against real SMTP servers on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.config import ConfigError, load_settings
from app.services import mail
from app.services.errors import Conflict, Unavailable
from tests.conftest import SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[2]


def smtp_settings(environ: dict[str, str] | None = None, **section: object):
    return load_settings(ROOT / "config.toml", overrides={"smtp": section}, environ=environ or {})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def running(sink: SmtpSink, **smtp_options: object) -> Iterator[SmtpSink]:
    controller = Controller(sink, hostname=sink.host, port=sink.port, **smtp_options)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


class Picky(SmtpSink):
    """Takes mail only for addresses at test.clinic."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if not address.endswith("@test.clinic"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_smtp_is_off_by_default_and_sending_then_refuses():
    settings = load_settings(ROOT / "config.toml", environ={}).smtp
    assert not settings.configured and settings.port == 25 and not settings.starttls
    message = mail.compose(settings, "nurse@test.clinic", "Hi", "Hello")
    with pytest.raises(Conflict, match=r"smtp\.host: this clinic has no mail server configured"):
        mail.send(settings, message)


def test_a_message_arrives_as_plain_text_with_its_headers(smtp_sink):
    settings = smtp_settings(**smtp_sink.section()).smtp
    body = mail.paragraphs(
        "Grüße, Zoë: " + "a long line of words " * 8, "https://x.test/" + "a" * 90
    )
    message = mail.compose(settings, "nurse@test.clinic", "Reset – now", body, to_name="Zoë Ünal")
    mail.send(settings, message)
    (recipients, got), *_ = smtp_sink.received
    assert recipients == ["nurse@test.clinic"]
    assert str(got["To"]) == "Zoë Ünal <nurse@test.clinic>"
    assert got["Subject"] == "Reset – now" and got["Auto-Submitted"] == "auto-generated"
    assert got["Message-ID"].endswith("@test.clinic>") and got["Date"]
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    lines = got.get_content().splitlines()
    assert lines[0].startswith("Grüße, Zoë: ") and "https://x.test/" + "a" * 90 in lines
    assert max(len(line) for line in lines if "x.test" not in line) <= 72


def test_a_closed_port_says_the_server_cannot_be_reached():
    settings = smtp_settings(host="127.0.0.1", port=free_port(), from_address="ivig@test.clinic")
    message = mail.compose(settings.smtp, "nurse@test.clinic", "Hi", "Hello")
    with pytest.raises(Unavailable) as caught:
        mail.send(settings.smtp, message)
    assert caught.value.status == 503 and caught.value.code == "unavailable"
    assert "127.0.0.1" in caught.value.message and "cannot be reached" in caught.value.message


def test_starttls_asked_of_a_server_without_it_is_refused(smtp_sink):
    settings = smtp_settings(**smtp_sink.section(starttls=True)).smtp
    with pytest.raises(Unavailable, match="STARTTLS"):
        mail.send(settings, mail.compose(settings, "nurse@test.clinic", "Hi", "Hello"))
    assert smtp_sink.received == []


def test_a_refused_address_is_named():
    with running(Picky()) as sink:
        settings = smtp_settings(**sink.section()).smtp
        message = mail.compose(settings, "someone@elsewhere.example", "Hi", "Hello")
        with pytest.raises(Unavailable, match=r"refused the address someone@elsewhere\.example"):
            mail.send(settings, message)
        assert sink.received == []


def test_the_login_uses_the_password_from_the_environment():
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=auth_data.password == b"s3cret-from-env", handled=False)

    with running(SmtpSink(), authenticator=authenticator, auth_require_tls=False) as sink:
        smtp = smtp_settings(
            {"MAIL_PW": "s3cret-from-env"},
            **sink.section(),
            username="ivig",
            password_env="MAIL_PW",
        ).smtp
        assert "s3cret" not in repr(smtp) and "password" not in smtp.model_dump()
        mail.send(smtp, mail.compose(smtp, "nurse@test.clinic", "Hi", "Hello"))
        assert logins == [(b"ivig", b"s3cret-from-env")] and len(sink.received) == 1

        wrong = smtp_settings(
            {"MAIL_PW": "not-it"}, **sink.section(), username="ivig", password_env="MAIL_PW"
        ).smtp
        with pytest.raises(Unavailable, match=r"refused the login of smtp\.username.*MAIL_PW"):
            mail.send(wrong, mail.compose(wrong, "nurse@test.clinic", "Hi", "Hello"))
        assert len(sink.received) == 1


def test_the_password_is_never_read_from_the_file(tmp_path):
    path = write(tmp_path, '[smtp]\nhost = "127.0.0.1"\nfrom_address = "a@b.org"\npassword = "x"\n')
    with pytest.raises(ConfigError, match=r"smtp\.password: never in this file"):
        load_settings(path, environ={})


def test_a_login_needs_its_environment_variable(tmp_path):
    path = write(tmp_path, '[smtp]\nhost = "127.0.0.1"\nfrom_address = "a@b.org"\nusername = "u"\n')
    with pytest.raises(ConfigError, match=r"smtp\.password_env: .*SMTP_PASSWORD"):
        load_settings(path, environ={})
    assert load_settings(path, environ={"SMTP_PASSWORD": "pw"}).smtp.password.get_secret_value()


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"host": "mail.example.org"}, r"smtp: .*from_address: needed when host is set"),
        (
            {"host": "mail.example.org", "from_address": "a@b.org", "username": "u"},
            r"smtp: .*needs starttls = true",
        ),
        ({"host": "mail.example.org:587", "from_address": "a@b.org"}, r"smtp\.host: "),
        ({"host": "mail.example.org", "from_address": "not an address"}, r"smtp\.from_address"),
        ({"port": 0}, r"smtp\.port"),
        ({"timeout_seconds": 0}, r"smtp\.timeout_seconds"),
        ({"password_env": "NOT A NAME"}, r"smtp\.password_env"),
    ],
)
def test_bad_smtp_settings_are_named(section, problem):
    with pytest.raises(ConfigError, match=problem):
        smtp_settings({"SMTP_PASSWORD": "pw"}, **section)
