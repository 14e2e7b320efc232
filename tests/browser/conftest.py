"""A live server on a fresh, committed database, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.services import demo
from tests.conftest import IN_CI, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def serve(databases, prepare, configure=None) -> Iterator[str]:
    """Serve the app on a new database that `prepare(session, settings)` fills first; with
    `configure(settings) -> settings`, on settings of the test's own."""
    url = databases.create()
    settings = make_settings(url)
    app = create_app(configure(settings) if configure else settings)
    state = app.extensions["ivig"]
    session = state.session_factory()
    prepare(session, state.settings)
    session.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    state.engine.dispose()


@pytest.fixture(scope="module")
def live_server(databases) -> Iterator[str]:
    yield from serve(databases, demo.load_demo_data)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which("chromium") is None and not shutil.which(CHROMIUM):
        message = "Debian's chromium is not installed (make test installs it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
