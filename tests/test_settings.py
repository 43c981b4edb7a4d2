from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.settings import ForgeInstance, Settings, SettingsError, load_settings, local_webhook_secret

CONFIG = Path(__file__).resolve().parents[1] / "config" / "forgeflow.yaml"


def test_the_documented_config_lists_every_setting_with_its_default():
    documented = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    fields = Settings.model_fields
    assert set(documented) == set(fields)
    defaults = Settings()
    for key, value in documented.items():
        actual = getattr(defaults, key)
        if isinstance(actual, Path):
            actual = str(actual)
        if isinstance(actual, tuple):
            actual = list(actual)
        assert value == actual, f"{key}: documented {value!r}, default {actual!r}"
    assert load_settings(environ={"FORGEFLOW_CONFIG": str(CONFIG)}) == defaults


def test_environment_overrides_the_file(tmp_path: Path):
    config = tmp_path / "f.yaml"
    config.write_text("public_url: https://file.example/\nworker_concurrency: 2\n")
    settings = load_settings(
        environ={
            "FORGEFLOW_CONFIG": str(config),
            "FORGEFLOW_WORKER_CONCURRENCY": "7",
            "FORGEFLOW_TRUSTED_USERS": "alice, bob",
            "UNRELATED": "x",
        }
    )
    assert settings.public_url == "https://file.example"
    assert settings.worker_concurrency == 7
    assert settings.trusted_users == ("alice", "bob")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FORGEFLOW_EXECUTOR": "nomad"}, "executor"),
        ({"FORGEFLOW_PORT": "eighty"}, "port"),
        ({"FORGEFLOW_CONFIG": "/nonexistent/forgeflow.yaml"}, "cannot read"),
    ],
)
def test_bad_settings_say_which_key(environ, message):
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    assert message in str(caught.value)


def test_derived_defaults(tmp_path: Path):
    settings = load_settings(environ={"FORGEFLOW_DATA_DIR": str(tmp_path)})
    assert settings.database == f"sqlite:///{tmp_path}/forgeflow.sqlite"
    assert settings.broker == f"sqla+sqlite:///{tmp_path}/broker.sqlite"


def test_forge_instances_from_flat_keys_and_lists():
    settings = load_settings(
        environ={
            "FORGEFLOW_GITHUB_WEBHOOK_SECRET": "s",
            "FORGEFLOW_GITHUB_API_URL": "https://ghe.example.com/api/v3",
            "FORGEFLOW_FORGES": (
                '[{"kind": "gitlab", "api_url": "https://gitlab.example.com", "webhook_secret": "g"}]'
            ),
        }
    )
    instances = {i.kind: i for i in settings.forge_instances()}
    assert instances["github"].url == "https://ghe.example.com"
    assert instances["github"].name == "ghe.example.com"
    assert instances["gitlab"].name == "gitlab.example.com"
    assert ForgeInstance(kind="github").url == "https://github.com"


def test_secrets_do_not_show_in_repr():
    settings = load_settings(
        environ={"FORGEFLOW_GITHUB_TOKEN": "ghp_secret", "FORGEFLOW_API_TOKEN": "api-s3cret"}
    )
    assert "ghp_secret" not in repr(settings) and "api-s3cret" not in repr(settings)


def test_local_secret_is_generated_once(tmp_path: Path):
    settings = load_settings(environ={"FORGEFLOW_DATA_DIR": str(tmp_path)})
    first = local_webhook_secret(settings)
    assert len(first) >= 32 and local_webhook_secret(settings) == first


def test_moving_the_service_moves_its_links_unless_public_url_says_otherwise():
    assert load_settings(environ={"FORGEFLOW_PORT": "18080"}).public_url == "http://127.0.0.1:18080"
    moved = load_settings(environ={"FORGEFLOW_HOST": "0.0.0.0", "FORGEFLOW_PORT": "9000"})  # noqa: S104
    assert moved.public_url == "http://127.0.0.1:9000"
    assert load_settings(environ={"FORGEFLOW_HOST": "::1"}).public_url == "http://[::1]:8080"
    told = {"FORGEFLOW_PORT": "18080", "FORGEFLOW_PUBLIC_URL": "https://ci.example.com"}
    assert load_settings(environ=told).public_url == "https://ci.example.com"
