"""Secrets at rest: what the server stores encrypted, and where its keys come from.

A ``SecretBox`` seals a short text (an access key's secret, a trigger's signing secret)
into a printable token the database keeps, and opens it again. The one implementation,
``AesGcmBox``, uses AES-256-GCM from the ``cryptography`` package with keys from a
``KeyProvider``: a key file (by default ``<data_dir>/secret.key``, created 0600 at first
start) or an environment variable, chosen by ``ServerConfig.secret_keys``.

A provider holds one or more keys, the current one first. Tokens name the key that
sealed them (``sy1:<key id>:<nonce + ciphertext>``, base64url), so after a rotation the
older keys still open what they sealed until the store re-seals it under the current key.
Each token is bound to its place in the database (``context``, e.g. the access key id) as
GCM associated data: a token copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from shipyard.config import ConfigError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
PREFIX = "sy1"
DEFAULT_KEY_FILE = "secret.key"
MAX_OPENED = 1024  # tokens whose plaintext an AesGcmBox keeps


class SecretBoxError(ValueError):
    """A sealed value cannot be opened: wrong key, altered token, or not sealed at all."""


class SecretBox(Protocol):
    def seal(self, plaintext: str, context: str) -> str:
        """A printable token for ``plaintext``, bound to ``context``."""
        ...

    def open(self, token: str, context: str) -> str:
        """The plaintext sealed in ``token`` for ``context``; SecretBoxError otherwise."""
        ...

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is sealed under the current key (False for plaintext)."""
        ...


class KeyProvider(Protocol):
    """Where the keys come from: a file, an environment variable, a KMS..."""

    def keys(self) -> Sequence[bytes]:
        """The keys, the current one (used to seal) first; older ones still open."""
        ...


def key_id(key: bytes) -> str:
    """A short, public name for a key: it tells which key sealed a token."""
    return hashlib.sha256(b"shipyard-key-id" + key).hexdigest()[:8]


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX + ":")


def resealed(box: SecretBox, stored: str, context: str) -> str | None:
    """``stored`` sealed under the box's current key, or None when it already is.

    A value without the token prefix is a plaintext secret from before secrets were
    encrypted; one sealed by an older key is opened and sealed again (key rotation)."""
    if box.is_current(stored):
        return None
    plaintext = box.open(stored, context) if is_sealed(stored) else stored
    return box.seal(plaintext, context)


class AesGcmBox:
    def __init__(self, keys: Sequence[bytes]) -> None:
        # Imported here: only the server needs it (agents and the CLI never load it).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise ConfigError("no secret key: the key provider gave none")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"a secret key must be {KEY_BYTES} bytes; got {len(key)}")
        self._current = key_id(keys[0])
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self._current_cipher = self._ciphers[self._current]
        # Every signed request opens its key's secret: a token opens to the same text
        # each time, so the last ones are kept (no more exposed than the keys beside
        # them). Cleared when full, bounded by MAX_OPENED.
        self._opened: dict[tuple[str, str], str] = {}

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._current_cipher.encrypt(nonce, plaintext.encode(), context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}:{self._current}:{body}"

    def open(self, token: str, context: str) -> str:
        opened = self._opened.get((token, context))
        if opened is None:
            opened = self._open(token, context)
            if len(self._opened) >= MAX_OPENED:
                self._opened.clear()
            self._opened[(token, context)] = opened
        return opened

    def _open(self, token: str, context: str) -> str:
        from cryptography.exceptions import InvalidTag

        prefix, _, rest = token.partition(":")
        kid, _, body = rest.partition(":")
        if prefix != PREFIX or not body:
            raise SecretBoxError("the value is not a sealed secret")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise SecretBoxError(f"the secret was sealed with key {kid}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretBoxError(f"the sealed secret does not open with key {kid}") from None

    def is_current(self, token: str) -> bool:
        return token.startswith(f"{PREFIX}:{self._current}:")


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def parse_keys(text: str, source: str) -> list[bytes]:
    """Keys written one per line (or comma-separated), base64; ``#`` starts a comment."""
    keys = []
    for line in text.replace(",", "\n").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            key = base64.urlsafe_b64decode(line + "=" * (-len(line) % 4))
        except (ValueError, binascii.Error):
            raise ConfigError(f"{source}: a key is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{source}: a key must be {KEY_BYTES} bytes (base64); got {len(key)}")
        keys.append(key)
    if not keys:
        raise ConfigError(f"{source} holds no key")
    return keys


class FileKeys:
    """Keys in a file only the server's user may read; created at first use if missing."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.create = create

    def keys(self) -> Sequence[bytes]:
        if self.create and not self.path.exists():
            self._write_new()
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the secret key file {self.path}: {exc}") from None
        return parse_keys(text, f"secret key file {self.path}")

    def _write_new(self) -> None:
        header = "# Shipyard's secret key: back it up; the database's secrets need it.\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # created meanwhile by another process
        with os.fdopen(fd, "w") as out:
            out.write(header + encode_key(new_key()) + "\n")
            out.flush()
            os.fsync(out.fileno())


class EnvKeys:
    """Keys in an environment variable (set by a secret manager or a systemd credential)."""

    def __init__(self, name: str, environ: Mapping[str, str]) -> None:
        self.name = name
        self.environ = environ

    def keys(self) -> Sequence[bytes]:
        value = self.environ.get(self.name, "")
        if not value:
            raise ConfigError(f"the environment variable {self.name} holding the key is not set")
        return parse_keys(value, f"environment variable {self.name}")


def key_provider(
    setting: str, data_dir: Path, environ: Mapping[str, str] | None = None
) -> KeyProvider:
    """The provider ``ServerConfig.secret_keys`` names.

    ``""``: ``<data_dir>/secret.key``, created at first start; ``file:<path>``: a key file
    kept elsewhere (it must exist); ``env:<NAME>``: the keys in that environment variable.
    """
    kind, _, where = setting.partition(":")
    if not setting:
        return FileKeys(data_dir / DEFAULT_KEY_FILE, create=True)
    if kind == "file" and where:
        return FileKeys(Path(where), create=False)
    if kind == "env" and where:
        return EnvKeys(where, os.environ if environ is None else environ)
    raise ConfigError(f"secret_keys must be empty, file:<path> or env:<NAME>; got {setting!r}")
