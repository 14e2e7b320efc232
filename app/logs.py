"""Logging helpers: feed tokens never reach a log line."""

from __future__ import annotations

import logging
import re

_FEED_TOKEN = re.compile(r"/feeds/[^/\s?\"']+\.ics")


def scrub(text: str) -> str:
    """Replace feed tokens in a URL or log line."""
    return _FEED_TOKEN.sub("/feeds/[redacted].ics", text)


class ScrubFeedTokens(logging.Filter):
    """Rewrite log records (access logs included) so feed tokens are redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(*logger_names: str) -> None:
    """Add the filter to the named loggers (idempotent)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubFeedTokens) for f in logger.filters):
            logger.addFilter(ScrubFeedTokens())
