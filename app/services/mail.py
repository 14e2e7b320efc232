"""Plain-text e-mail through the clinic's mail server (config.toml [smtp]).

Any service may send: `compose` builds the message, `send` hands it to the server. Both are
pure of Flask and of the database. A service that sends inside its unit of work does so last,
before the commit: when the server cannot be reached `send` raises `Unavailable`, the unit
rolls back and nothing the e-mail speaks of stays written.

Decisions:
- `send` opens one connection per message (a password reset); the reminder sweep opens one
  `connection` per batch and sends each message on it.
- STARTTLS verifies the server's certificate against the system's trust store; there is no
  switch to skip that.
- A message any of whose recipients the server refuses counts as not sent.
"""

from __future__ import annotations

import smtplib
import ssl
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid, parseaddr

from app.config import SmtpSettings
from app.services.errors import Conflict, Unavailable

NOT_CONFIGURED = (
    "smtp.host: this clinic has no mail server configured (config.toml [smtp]), so nothing "
    "can be e-mailed"
)


class Unreachable(Unavailable):
    """The mail server could not be reached at all (down, refused, timed out): nothing about
    any one message is wrong, so it is not a refusal of that message."""


def usable_address(text: str) -> bool:
    """Return whether an e-mail address can be written in a message header and sent by the
    SMTP servers clinics run (plain ASCII, one address, a dot-atom local part)."""
    if not text.isascii() or any(c in text for c in ' ,;<>()[]\\"') or text.count("@") != 1:
        return False
    local, _, domain = text.partition("@")
    if not local or ".." in text or local.startswith(".") or local.endswith("."):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return False
    try:
        Address(addr_spec=text)
    except (ValueError, IndexError, HeaderParseError):
        return False
    return True


def require_configured(settings: SmtpSettings) -> None:
    """Refuse at once (409) when no mail server is configured."""
    if not settings.configured:
        raise Conflict(NOT_CONFIGURED)


def compose(
    settings: SmtpSettings, to: str, subject: str, body: str, to_name: str = ""
) -> EmailMessage:
    """Build a plain-text e-mail from the configured sender to one address."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.from_address
    message["To"] = Address(display_name=to_name, addr_spec=to) if to_name else to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    # RFC 3834: an automatic message, so vacation responders stay quiet.
    message["Auto-Submitted"] = "auto-generated"
    # Names may be non-ASCII; quoted-printable passes servers that lack 8BITMIME.
    message.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return message


def paragraphs(*texts: str, width: int = 72) -> str:
    """Join paragraphs into a plain-text body, each wrapped at `width` (links stay whole)."""
    wrapped = (
        textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False) for text in texts
    )
    return "\n\n".join(wrapped) + "\n"


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand one message to the mail server, or raise Unavailable saying why it was not sent."""
    with connection(settings) as server:
        server.send(message)


class Connection:
    """One open connection to the mail server; `send` raises Unavailable per message."""

    def __init__(self, settings: SmtpSettings, smtp: smtplib.SMTP) -> None:
        self.server = f"{settings.host}:{settings.port}"
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        with _reasons(self.server, None):
            refused = self.smtp.send_message(message)
        if refused:
            raise Unavailable(_refused(self.server, refused))


@contextmanager
def connection(settings: SmtpSettings) -> Iterator[Connection]:
    """Open one connection (STARTTLS and login as configured) for one or more messages."""
    require_configured(settings)
    server = f"{settings.host}:{settings.port}"
    with _reasons(server, settings):
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    try:
        with _reasons(server, settings):
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password.get_secret_value())
        yield Connection(settings, smtp)
    finally:
        with suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()


@contextmanager
def _reasons(server: str, settings: SmtpSettings | None) -> Iterator[None]:
    """Turn what smtplib raises into Unavailable, saying why in the clinic's words."""
    try:
        yield
    except smtplib.SMTPRecipientsRefused as exc:
        raise Unavailable(_refused(server, exc.recipients)) from exc
    except smtplib.SMTPAuthenticationError as exc:
        env = settings.password_env if settings else "the password variable"
        raise Unavailable(
            f"The mail server {server} refused the login of smtp.username ({_reason(exc)}); "
            f"check the password in {env}."
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise Unavailable(f"The mail server {server} cannot do what [smtp] asks: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        raise Unavailable(
            f"The mail server {server} did not take the message ({exc.smtp_code} {_reason(exc)})."
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS failure, hang-up
        raise Unreachable(
            f"The mail server {server} cannot be reached ({_reason(exc)}); try again later."
        ) from exc


def _refused(server: str, refused: dict[str, tuple[int, bytes]]) -> str:
    addresses = ", ".join(
        f"{address} ({code})" for address, (code, _text) in sorted(refused.items())
    )
    return f"The mail server {server} refused the address {addresses}."


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return (text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text))[:200]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)[:200] or type(exc).__name__
