"""The JSON API: bearer tokens, error envelopes, validation from the OpenAPI schemas."""

import sqlalchemy as sa

from app.models import ApiToken, AuditEvent, User


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    return body["error"]


def test_me_answers_with_the_token_owner(client, make_user, bearer):
    nurse = make_user("nurse")
    response = client.get("/api/v1/me", headers=bearer(nurse))
    assert response.status_code == 200
    assert response.json["email"] == nurse.email and response.json["role"] == "nurse"


def test_bad_or_revoked_token_is_401(client, make_user, bearer):
    nurse = make_user("nurse")
    headers = bearer(nurse)
    assert (
        client.get("/api/v1/me", headers={"Authorization": "Bearer ivig_nope"}).status_code == 401
    )
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
    tokens = client.get("/api/v1/tokens", headers=headers).json["tokens"]
    assert client.delete(f"/api/v1/tokens/{tokens[0]['id']}", headers=headers).status_code == 204
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_session_cookies_do_not_open_the_api(app, make_user):
    from tests.conftest import login

    client = app.test_client()
    login(client, make_user("admin").email)
    assert client.get("/api/v1/me").status_code == 401


def test_admin_creates_a_user_and_the_audit_row_names_the_request(
    client, make_user, bearer, db_session
):
    admin = make_user("admin")
    response = client.post(
        "/api/v1/users",
        headers=bearer(admin) | {"X-Request-ID": "req-123"},
        json={
            "email": "new.nurse@test.clinic",
            "full_name": "New Nurse",
            "role": "nurse",
            "password": "long-enough-password",
        },
    )
    assert response.status_code == 201, response.json
    assert response.json["role"] == "nurse"
    # The client's id is echoed back; the audit row keeps the server's own, which a client
    # cannot choose (hardening: a forged X-Request-ID must not reach the audit trail).
    assert response.headers["X-Client-Request-ID"] == "req-123"
    ours = response.headers["X-Request-ID"]
    assert ours != "req-123" and len(ours) == 32
    event = db_session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "user.create", AuditEvent.entity_id == str(response.json["id"])
        )
    )
    assert event.actor_user_id == admin.id and event.request_id == ours


def test_validation_error_names_the_field(client, make_user, bearer, db_session):
    admin = make_user("admin")
    before = db_session.scalar(sa.select(sa.func.count(User.id)))
    response = client.post(
        "/api/v1/users",
        headers=bearer(admin),
        json={"email": "x@test.clinic", "full_name": "X", "role": "surgeon", "password": "p" * 12},
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "role" and error["code"] == "invalid"
    assert "nurse" in error["message"]
    response = client.post(
        "/api/v1/users",
        headers=bearer(admin),
        json={"email": "x@test.clinic", "full_name": "X", "role": "nurse", "password": "short"},
    )
    assert response.status_code == 422
    assert error_of(response)["field"] == "password"
    assert "at least 10" in error_of(response)["message"]
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == before


def test_wrong_type_and_unknown_field_are_422(client, make_user, bearer):
    admin = make_user("admin")
    response = client.post("/api/v1/tokens", headers=bearer(admin), json={"days": "soon"})
    assert response.status_code == 422 and error_of(response)["field"] == "days"
    response = client.post("/api/v1/tokens", headers=bearer(admin), json={"days": 99999})
    assert response.status_code == 422 and "3650" in error_of(response)["message"]
    response = client.post("/api/v1/tokens", headers=bearer(admin), json={"colour": "red"})
    assert response.status_code == 422 and error_of(response)["field"] == "colour"


def test_malformed_json_is_a_clear_4xx(client, make_user, bearer):
    admin = make_user("admin")
    response = client.post(
        "/api/v1/users",
        headers=bearer(admin) | {"Content-Type": "application/json"},
        data="{not json",
    )
    assert response.status_code in (400, 422)
    assert error_of(response)["message"]


def test_duplicate_user_is_409(client, make_user, bearer):
    admin = make_user("admin")
    body = {"email": admin.email, "full_name": "Dup", "role": "nurse", "password": "p" * 12}
    response = client.post("/api/v1/users", headers=bearer(admin), json=body)
    assert response.status_code == 409
    assert error_of(response) == {
        "code": "conflict",
        "field": "email",
        "message": f"email: a user with {admin.email} exists already",
    }


def test_unknown_token_id_is_404_and_other_peoples_tokens_are_invisible(
    client, make_user, bearer, db_session
):
    nurse, other = make_user("nurse"), make_user("nurse")
    other_headers = bearer(other)
    other_token = db_session.scalar(sa.select(ApiToken).where(ApiToken.user_id == other.id))
    response = client.delete(f"/api/v1/tokens/{other_token.id}", headers=bearer(nurse))
    assert response.status_code == 404 and error_of(response)["field"] == "token_id"
    assert client.delete("/api/v1/tokens/424242", headers=bearer(nurse)).status_code == 404
    assert client.get("/api/v1/me", headers=other_headers).status_code == 200


def test_token_created_over_the_api_works_and_is_shown_once(client, make_user, bearer):
    nurse = make_user("nurse")
    response = client.post("/api/v1/tokens", headers=bearer(nurse), json={"name": "tablet"})
    assert response.status_code == 201
    token = response.json["token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = client.get("/api/v1/tokens", headers=bearer(nurse)).json["tokens"]
    assert all("token" not in t for t in listed)


def test_method_not_allowed_is_json(client, make_user, bearer):
    response = client.put("/api/v1/me", headers=bearer(make_user("nurse")))
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


def test_audit_api_filters(client, make_user, bearer):
    admin = make_user("admin")
    make_user("nurse", email="filtered@test.clinic")
    response = client.get(
        "/api/v1/audit", headers=bearer(admin), query_string={"action": "user.create"}
    )
    assert response.status_code == 200
    assert {e["action"] for e in response.json["events"]} == {"user.create"}
    assert response.json["total"] == 2
    response = client.get(
        "/api/v1/audit", headers=bearer(admin), query_string={"since": "2020-01-01T00:00:00"}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "since"


def test_openapi_document_is_generated_from_the_schemas(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/users" in spec["paths"] and "/api/v1/me" in spec["paths"]
    create = spec["paths"]["/api/v1/users"]["post"]
    body_schema = create["requestBody"]["content"]["application/json"]["schema"]
    ref = body_schema["$ref"].rsplit("/", 1)[-1]
    role = spec["components"]["schemas"][ref]["properties"]["role"]
    assert set(role["enum"]) == {"nurse", "physician", "admin"}
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert create["security"] == [{"BearerAuth": []}]
    assert not any(path.startswith(("/login", "/admin")) for path in spec["paths"])
