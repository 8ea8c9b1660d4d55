"""The local stack with credentials that are really checked: Kafka's SASL/SCRAM listener and Redis ACL users.

``tallyroom stack up --secure`` (or ``TALLYROOM_STACK_SECURE=true``) makes, once, a folder of
credentials under the stack dir (``credentials/``, mode 0700, each file 0600), with random passwords:

- Kafka (SCRAM-SHA-512, created by Kafka's own ``kafka-storage format --add-scram`` when the storage
  is formatted): ``broker``, the broker's own inter-broker login, and ``tallyroom``, the apps'.
  There is no authorizer: any authenticated user may produce and consume.
- Redis (ACL users in the generated redis.conf; the ``default`` user is switched off):

  ============  ==========================================================================
  ``sink``      the writer: reads and writes ``tallyroom:*`` keys and channels, runs the
                sink's Lua scripts; nothing ``@dangerous`` (no FLUSHALL, KEYS, CONFIG, ...) but
                INFO, whose run_id tells the sink that Redis restarted
  ``reader``    web, watch, seats, history, replay --wait: ``+@read`` on ``tallyroom:*``, no write
  ``subscriber``  subscribe and webhooks: what ``reader`` has, plus consumer-group commands
                (XGROUP, XREADGROUP, XACK, XAUTOCLAIM, XCLAIM) on the ``tallyroom:*:alerts``
                streams only, and XADD on ``tallyroom:*:webhook-failures`` (webhooks' record of
                alerts that exhausted their attempts). XREADGROUP and XACK are write commands:
                they change the group's state kept in the stream, never its entries.
  ``admin``     everything: the stack's own readiness probe, and operators' tools
  ============  ==========================================================================

Each role has an env file, ``credentials/<role>.env`` (``export TALLYROOM_...=...`` lines), to source
before running that role's process; processes read their credentials from the environment only.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from tallyroom.settings import Settings

KAFKA_MECHANISM = "SCRAM-SHA-512"
KAFKA_PROTOCOL = "SASL_PLAINTEXT"
KAFKA_BROKER_USER = "broker"
KAFKA_APP_USER = "tallyroom"
KAFKA_USERS = (KAFKA_BROKER_USER, KAFKA_APP_USER)

# +@transaction: MULTI/EXEC, which readers use for a consistent read; each command inside is still checked.
_READ = "+@read +@connection +@transaction -@dangerous"
# Redis ACL rules of each user after "user <name> on >password resetkeys resetchannels -@all".
REDIS_RULES: dict[str, str] = {
    "admin": "~* &* +@all",
    # +info: the sink reads INFO's run_id at each poll to see a restarted Redis (consumers/redis_sink.py)
    "sink": "~tallyroom:* &tallyroom:* +@read +@write +@scripting +@connection +@transaction +@pubsub -@dangerous "
    "+info",
    "reader": f"%R~tallyroom:* &tallyroom:* {_READ} +subscribe +psubscribe +unsubscribe +punsubscribe",
    "subscriber": (
        f"%R~tallyroom:* %RW~tallyroom:*:alerts {_READ} +xgroup|create +xreadgroup +xack +xautoclaim +xclaim "
        "(%W~tallyroom:*:webhook-failures +xadd +@transaction)"
    ),
}
# Which Redis user each role's processes log in as (the worker needs no Redis).
ROLES: dict[str, str | None] = {
    "worker": None,
    "sink": "sink",
    "producer": "reader",  # replay and declare write to Kafka; `--wait` reads Redis
    "entry": "sink",  # live entry appends its audit trail
    "reader": "reader",
    "subscriber": "subscriber",
    "admin": "admin",
}


@dataclass(frozen=True)
class Credentials:
    """The secure stack's generated passwords, by login name."""

    kafka: dict[str, str]
    redis: dict[str, str]


def secure(settings: Settings) -> bool:
    """Secure when asked for, or when a secure stack was made here (so `up`, `status` and `down` agree)."""
    return settings.stack_secure or credentials_dir(settings).is_dir()


def credentials_dir(settings: Settings) -> Path:
    return Path(settings.stack_dir) / "credentials"


def _secret_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _read_passwords(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: password for name, password in pairs}


def ensure_credentials(settings: Settings) -> Credentials:
    """The stack's credentials, generated on first use and kept (the broker's storage holds the SCRAM ones)."""
    folder = credentials_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {"kafka": KAFKA_USERS, "redis": tuple(REDIS_RULES)}
    found: dict[str, dict[str, str]] = {}
    for service, names in files.items():
        path = folder / f"{service}.passwords"
        passwords = _read_passwords(path) if path.is_file() else {}
        if set(names) - set(passwords):
            passwords = {name: passwords.get(name) or secrets.token_urlsafe(24) for name in names}
            _secret_file(path, "".join(f"{name}={password}\n" for name, password in passwords.items()))
        found[service] = passwords
    credentials = Credentials(found["kafka"], found["redis"])
    for role in ROLES:
        _secret_file(folder / f"{role}.env", env_file_text(role_env(settings, credentials, role)))
    return credentials


def role_env(settings: Settings, credentials: Credentials, role: str) -> dict[str, str]:
    """The TALLYROOM_* variables a process of ``role`` needs on this secure stack."""
    env = {
        "TALLYROOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TALLYROOM_KAFKA_SECURITY_PROTOCOL": KAFKA_PROTOCOL,
        "TALLYROOM_KAFKA_SASL_MECHANISM": KAFKA_MECHANISM,
        "TALLYROOM_KAFKA_SASL_USERNAME": KAFKA_APP_USER,
        "TALLYROOM_KAFKA_SASL_PASSWORD": credentials.kafka[KAFKA_APP_USER],
    }
    user = ROLES[role]
    if user is not None:
        env |= {"TALLYROOM_REDIS_USERNAME": user, "TALLYROOM_REDIS_PASSWORD": credentials.redis[user]}
    return env


def env_file_text(env: dict[str, str]) -> str:
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def admin_settings(settings: Settings, credentials: Credentials) -> Settings:
    """``settings`` logged in as the stack's admin (the readiness probes), whatever the environment says."""
    return settings.model_copy(
        update={
            "kafka_security_protocol": KAFKA_PROTOCOL,
            "kafka_sasl_mechanism": KAFKA_MECHANISM,
            "kafka_sasl_username": KAFKA_APP_USER,
            "kafka_sasl_password": _secret(credentials.kafka[KAFKA_APP_USER]),
            "redis_username": "admin",
            "redis_password": _secret(credentials.redis["admin"]),
        }
    )


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def kafka_properties(credentials: Credentials, listener: str) -> str:
    """server.properties lines of the SASL/SCRAM client and inter-broker listener named ``listener``."""
    password = credentials.kafka[KAFKA_BROKER_USER].replace('"', '\\"')
    return f"""\
inter.broker.listener.name={listener}
sasl.enabled.mechanisms={KAFKA_MECHANISM}
sasl.mechanism.inter.broker.protocol={KAFKA_MECHANISM}
listener.name.{listener.lower()}.{KAFKA_MECHANISM.lower()}.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username="{KAFKA_BROKER_USER}" password="{password}";
"""


def storage_scram_args(credentials: Credentials) -> list[str]:
    """``kafka-storage format`` arguments that create every SCRAM user with the storage."""
    args = []
    for name, password in credentials.kafka.items():
        args += ["--add-scram", f"{KAFKA_MECHANISM}=[name={name},password={password}]"]
    return args


def redis_acl_lines(credentials: Credentials) -> list[str]:
    lines = ["user default off resetkeys resetchannels -@all"]
    for name, rules in REDIS_RULES.items():
        lines.append(f"user {name} on >{credentials.redis[name]} resetkeys resetchannels -@all {rules}")
    return lines
