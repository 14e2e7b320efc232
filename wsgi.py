"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi run`.

The process configures logging here, once; the app factory only sets its own logger's level.
"""

import logging
import sys

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.stderr.write(f"configuration error: {exc}\n")
    raise SystemExit(2) from None
logging.basicConfig(level=app.extensions["ivig"].settings.app.log_level)
