"""The secure local stack's generated credentials, Kafka listener and Redis ACL users (no services needed)."""

from __future__ import annotations

import stat

from tallyroom import stack, stack_secure
from tallyroom.settings import Settings


def secure_settings(tmp_path) -> Settings:
    return Settings(_env_file=None, stack_dir=tmp_path, stack_secure=True, kafka_bootstrap="127.0.0.1:19999")


def test_credentials_are_generated_once_kept_and_private(tmp_path):
    settings = secure_settings(tmp_path)
    first = stack_secure.ensure_credentials(settings)
    again = stack_secure.ensure_credentials(settings)
    assert first == again  # the broker's storage holds the SCRAM ones: they must not change
    assert set(first.kafka) == set(stack_secure.KAFKA_USERS)
    assert set(first.redis) == set(stack_secure.REDIS_RULES)
    assert len(set(first.kafka.values()) | set(first.redis.values())) == len(first.kafka) + len(first.redis)
    folder = stack_secure.credentials_dir(settings)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_each_role_gets_the_kafka_login_and_its_own_redis_user(tmp_path):
    settings = secure_settings(tmp_path)
    credentials = stack_secure.ensure_credentials(settings)
    reader = stack_secure.role_env(settings, credentials, "reader")
    assert reader["TALLYROOM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert reader["TALLYROOM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert reader["TALLYROOM_KAFKA_SASL_PASSWORD"] == credentials.kafka["tallyroom"]
    assert (reader["TALLYROOM_REDIS_USERNAME"], reader["TALLYROOM_REDIS_PASSWORD"]) == (
        "reader",
        credentials.redis["reader"],
    )
    assert "TALLYROOM_REDIS_USERNAME" not in stack_secure.role_env(settings, credentials, "worker")
    text = (stack_secure.credentials_dir(settings) / "sink.env").read_text()
    assert "export TALLYROOM_REDIS_USERNAME=sink\n" in text


def test_the_secure_stack_stays_secure_once_made(tmp_path):
    settings = secure_settings(tmp_path)
    assert not stack_secure.secure(settings.model_copy(update={"stack_secure": False}))
    stack_secure.ensure_credentials(settings)
    assert stack_secure.secure(settings.model_copy(update={"stack_secure": False}))


def test_broker_properties_have_only_a_scram_client_listener(tmp_path):
    settings = secure_settings(tmp_path)
    props = stack._server_properties(settings).read_text()
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:19999,CONTROLLER://" in props
    assert "advertised.listeners=SASL_PLAINTEXT://127.0.0.1:19999\n" in props
    assert "PLAINTEXT://127.0.0.1:19999" not in props.replace("SASL_PLAINTEXT://", "")
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in props
    assert "inter.broker.listener.name=SASL_PLAINTEXT" in props
    broker_password = stack_secure.ensure_credentials(settings).kafka["broker"]
    assert f'username="broker" password="{broker_password}";' in props
    assert stat.S_IMODE(stack._server_properties(settings).stat().st_mode) == 0o600


def test_storage_is_formatted_with_every_scram_user(tmp_path):
    credentials = stack_secure.ensure_credentials(secure_settings(tmp_path))
    args = stack_secure.storage_scram_args(credentials)
    assert args[::2] == ["--add-scram"] * len(stack_secure.KAFKA_USERS)
    assert f"SCRAM-SHA-512=[name=tallyroom,password={credentials.kafka['tallyroom']}]" in args


def test_redis_acl_switches_off_the_default_user_and_keeps_the_reader_read_only(tmp_path):
    settings = secure_settings(tmp_path)
    conf = stack._redis_conf(settings).read_text().splitlines()
    users = {line.split()[1]: line for line in conf if line.startswith("user ")}
    assert users["default"].startswith("user default off")
    assert set(users) == {"default", *stack_secure.REDIS_RULES}
    assert "%R~tallyroom:*" in users["reader"] and "+@write" not in users["reader"]
    assert not any(line.startswith("requirepass") for line in conf)
