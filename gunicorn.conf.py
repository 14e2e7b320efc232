"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (feed tokens kept out of logs)."""

import multiprocessing

bind = "127.0.0.1:8000"
workers = min(4, multiprocessing.cpu_count() * 2)
accesslog = "-"


def on_starting(server: object) -> None:
    from app import logs

    logs.install("gunicorn.access", "gunicorn.error")


def post_fork(server: object, worker: object) -> None:
    from app import logs

    logs.install("gunicorn.access", "gunicorn.error")
