from pathlib import Path

import pytest

from app.config import DEFAULT_SECRET_KEY, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_loads_with_documented_defaults():
    settings = load_settings(ROOT / "config.toml", environ={})
    assert settings.app.mode == "development"
    assert settings.auth.max_failed_logins == 5
    assert settings.app.database_url == f"sqlite:///{ROOT / 'instance' / 'ivig.sqlite3'}"


def test_every_setting_in_the_file_has_a_comment():
    lines = (ROOT / "config.toml").read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#"):
            assert lines[number - 1].lstrip().startswith("#"), f"no comment above: {line}"


def test_bad_value_names_the_key_and_the_limit(tmp_path):
    path = write(tmp_path, "[auth]\nmax_failed_logins = 0\n")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path, environ={})
    assert "auth.max_failed_logins" in str(excinfo.value)
    assert "greater than or equal to 1" in str(excinfo.value)


def test_unknown_key_is_refused(tmp_path):
    path = write(tmp_path, "[auth]\nmax_failed_login = 3\n")
    with pytest.raises(ConfigError, match=r"auth\.max_failed_login: unknown setting"):
        load_settings(path, environ={})


def test_wrong_type_and_bad_zone_are_named(tmp_path):
    path = write(
        tmp_path, '[auth]\nlockout_minutes = "soon"\n[scheduler]\ntimezone = "Mars/Base"\n'
    )
    with pytest.raises(ConfigError) as excinfo:
        load_settings(path, environ={})
    message = str(excinfo.value)
    assert "auth.lockout_minutes" in message
    assert "scheduler.timezone" in message and "IANA" in message


def test_unknown_database_backend_is_refused(tmp_path):
    path = write(tmp_path, '[app]\ndatabase_url = "mysql://x/y"\n')
    with pytest.raises(ConfigError, match=r"app\.database_url: .*sqlite://"):
        load_settings(path, environ={})


def test_environment_overrides_database_url_and_secret(tmp_path):
    path = write(tmp_path, "")
    settings = load_settings(
        path,
        environ={
            "DATABASE_URL": "postgresql://u@db.example/ivig",
            "SECRET_KEY": "s" * 40,
        },
    )
    assert settings.app.database_url == "postgresql+psycopg://u@db.example/ivig"
    assert settings.app.secret_key == "s" * 40


def test_config_path_comes_from_the_environment(tmp_path):
    path = write(tmp_path, '[app]\nclinic_name = "North Clinic"\n')
    assert load_settings(environ={"IVIG_CONFIG": str(path)}).app.clinic_name == "North Clinic"


def test_relative_sqlite_path_is_taken_from_the_config_folder(tmp_path):
    path = write(tmp_path, '[app]\ndatabase_url = "sqlite:///data/x.db"\n')
    assert load_settings(path, environ={}).app.database_url == f"sqlite:///{tmp_path}/data/x.db"


def test_production_refuses_the_default_secret_key(tmp_path):
    path = write(
        tmp_path,
        '[app]\nmode = "production"\n[feeds]\npublic_base_url = "https://ivig.example.org"\n',
    )
    with pytest.raises(ConfigError, match=r"app\.secret_key"):
        load_settings(path, environ={})
    with pytest.raises(ConfigError, match=r"app\.secret_key"):
        load_settings(path, environ={"SECRET_KEY": "short-but-16-chars"})
    settings = load_settings(path, environ={"SECRET_KEY": "x" * 32})
    assert settings.is_production and settings.app.secret_key != DEFAULT_SECRET_KEY


def test_production_needs_the_public_feed_address(tmp_path):
    # Without it feed links would come from the request's Host header, which a client forges.
    path = write(tmp_path, '[app]\nmode = "production"\n')
    with pytest.raises(ConfigError, match=r"feeds\.public_base_url"):
        load_settings(path, environ={"SECRET_KEY": "x" * 32})


def test_missing_file_and_bad_toml_say_so(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[app\n"), environ={})


def test_a_bad_rule_file_stops_the_app_naming_the_rule(tmp_path):
    from app import create_app

    rules = (ROOT / "app" / "domain" / "rules" / "default_rules.toml").read_text()
    bad = tmp_path / "rules.toml"
    bad.write_text(rules.replace("cycles_given >= 3", "cycles_givn >= 3"))
    config = write(tmp_path, f'[rules]\nfile = "{bad.name}"\n')
    with pytest.raises(ConfigError, match=r"rules\.file: .*non_response_review.*cycles_givn"):
        create_app(load_settings(config, environ={}))
