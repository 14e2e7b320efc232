"""The API fuzzed by schemathesis (every check on) against the live app, as each role.

A bounded, deterministic run here; `st run` with more examples is the long version (see the
README). It fails on a server error, a response the OpenAPI document does not describe, an
undocumented status, and the rest of schemathesis's checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.services import demo
from app.services import users as user_service
from app.services.context import system_actor
from tests.conftest import make_settings

ST = Path(sys.executable).with_name("st")
ROOT = Path(__file__).resolve().parents[2]
#: The long run: IVIG_SCHEMATHESIS_EXAMPLES=100 (about 5,000 requests a role).
EXAMPLES = os.environ.get("IVIG_SCHEMATHESIS_EXAMPLES", "6")
ROLES = {
    "nurse": "nurse@demo.clinic",
    "physician": "physician@demo.clinic",
    "admin": "admin@demo.clinic",
}


@pytest.fixture(scope="module")
def live_api(databases) -> Iterator[tuple[str, dict[str, str]]]:
    url = databases.create()
    app = create_app(make_settings(url))
    state = app.extensions["ivig"]
    session = state.session_factory()
    demo.load_demo_data(session, state.settings)
    tokens = {}
    for role, email in ROLES.items():
        user = user_service.get_user_by_email(session, email)
        tokens[role], _ = user_service.create_api_token(
            session, system_actor("test"), user=user, name="schemathesis", days=1
        )
    session.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", tokens
    server.shutdown()
    thread.join()
    state.engine.dispose()


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_api_passes_every_schemathesis_check(live_api, role, tmp_path):
    base, tokens = live_api
    assert ST.exists() or shutil.which("st"), "schemathesis is a dev dependency"
    result = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(ROOT / "schemathesis.toml"),
            "run",
            f"{base}/api/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {tokens[role]}",
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "20261202",
            "--generation-deterministic",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=3600,
        check=False,
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "generated" in summary
