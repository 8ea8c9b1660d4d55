"""Operators: the named people who may write to a night, each with a token and a role.

A token is shown once, when the operator is added, and only its SHA-256 is kept (in
``Settings.operators_path``, a JSON file readable by its owner alone). A fast hash is
enough because a token is 256 random bits, not a password: there is nothing to guess
from a dictionary. Checking a token compares its hash with every stored one in
constant time (``hmac.compare_digest``), so the answer's timing says nothing about
how close a guess came or which operator it was near.

Roles: ``entry`` sends results, rushes and recounts; ``admin`` also opens or changes a
night (seats, baseline, nominations) and withdraws a result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path


class Role(StrEnum):
    ENTRY = "entry"
    ADMIN = "admin"


# Event kinds only an admin may send: they change the night itself or undo a result.
ADMIN_ONLY_KINDS = frozenset({"night", "withdrawal"})
TOKEN_BYTES = 32  # secrets.token_urlsafe(32): 43 URL-safe characters
OPERATOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class OperatorError(ValueError):
    """An operator that cannot be added or revoked, with the reason."""


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    token_sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def may_send(role: Role, kind: str) -> bool:
    return role is Role.ADMIN or kind not in ADMIN_ONLY_KINDS


class OperatorStore:
    """The operators file. Read again whenever it changes, so a revoke takes effect at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[tuple[int, int] | None, dict[str, Operator]] = (None, {})

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def operators(self) -> dict[str, Operator]:
        stamp = self._stamp()
        if stamp is not None and stamp == self._cache[0]:
            return self._cache[1]
        if stamp is None:
            loaded: dict[str, Operator] = {}
        else:
            try:
                document = json.loads(self.path.read_text(encoding="utf-8"))
                loaded = {
                    entry["name"]: Operator(**(entry | {"role": Role(entry["role"])}))
                    for entry in document["operators"]
                }
            except (ValueError, KeyError, TypeError) as exc:
                raise OperatorError(f"{self.path}: not an operators file: {exc}") from exc
        self._cache = (stamp, loaded)
        return loaded

    def _write(self, operators: dict[str, Operator]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"operators": [asdict(op) | {"role": op.role.value} for op in operators.values()]}
        # Written whole to a private temporary file, then renamed: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".operators-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=2)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def add(self, name: str, role: Role = Role.ENTRY) -> str:
        """Add an operator (or re-issue a revoked one's); returns the token, which is kept nowhere."""
        if not OPERATOR_NAME.match(name):
            raise OperatorError(
                f"operator name {name!r}: use letters, digits and . _ @ - (at most 64, starting with a letter or digit)"
            )
        operators = dict(self.operators())
        if name in operators and operators[name].active:
            raise OperatorError(f"operator {name!r} already exists: revoke it first to issue a new token")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        operators[name] = Operator(name, Role(role), token_hash(token), datetime.now(UTC).isoformat())
        self._write(operators)
        return token

    def revoke(self, name: str) -> Operator:
        operators = dict(self.operators())
        if name not in operators:
            raise OperatorError(f"no operator {name!r}")
        if not operators[name].active:
            return operators[name]
        operators[name] = revoked = Operator(
            **(asdict(operators[name]) | {"revoked_at": datetime.now(UTC).isoformat()})
        )
        self._write(operators)
        return revoked

    def authenticate(self, token: str) -> Operator | None:
        """The active operator holding ``token``, or None. Every stored hash is compared, in constant time."""
        presented = token_hash(token)
        found = None
        for operator in self.operators().values():
            if hmac.compare_digest(presented, operator.token_sha256) and operator.active:
                found = operator
        return found
