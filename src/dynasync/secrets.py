"""Encryption at rest for client secrets and tokens (AES-256-GCM under a local key file or a caller-given key).

Ciphertexts look like ``dsx1.<key id>.<base64url(nonce + ciphertext + tag)>``: the version prefix and key id let
old ciphertexts decrypt after a new key is added (rotation), and :meth:`SecretBox.rotate` re-encrypts them under
the newest key. An optional ``context`` string is bound as associated data, so a ciphertext copied from one field
or connection into another fails to decrypt.

Key file format: one key per line, ``<key id> <base64url 32-byte key>``; the last line is the newest key.
Library code never reads ``os.environ``: a key from the environment is passed in by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets as _stdlib_secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dynasync.errors import ConfigError

__all__ = [
    "KEY_FILE_NAME",
    "PREFIX",
    "Secret",
    "SecretBox",
    "SecretsError",
    "add_key",
    "load_secret_box",
]

PREFIX = "dsx1"
KEY_FILE_NAME = "secret.key"
_NONCE = 12
_KEY_BYTES = 32


class SecretsError(ConfigError):
    """A secret could not be decrypted or the key material is missing, malformed or too widely readable."""


class Secret:
    """A string that never shows itself in ``repr``, ``str``, f-strings or logs; call :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        """Return the plain value; only at the point of use (an HTTP form field, an msal call)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling a secret would write it in clear wherever the pickle goes; refuse instead.
        raise TypeError("Secret values are not picklable; encrypt them with SecretBox")


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _valid_key_id(key_id: str) -> bool:
    return 0 < len(key_id) <= 32 and all(c.isalnum() or c in "-_" for c in key_id)


class SecretBox:
    """Encrypts and decrypts short strings with AES-256-GCM; knows several keys, encrypts with the newest.

    Args:
        keys: ``(key id, 32-byte key)`` pairs, oldest first; the last one encrypts.
    """

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._keys: dict[str, AESGCM] = {}
        self._primary = ""
        for key_id, key in keys:
            if not _valid_key_id(key_id):
                raise SecretsError(f"Invalid key id {key_id!r} in the secret key material.")
            if len(key) != _KEY_BYTES:
                raise SecretsError(f"Key {key_id!r} is {len(key)} bytes; AES-256-GCM needs {_KEY_BYTES}.")
            self._keys[key_id] = AESGCM(key)
            self._primary = key_id
        if not self._keys:
            raise SecretsError("No encryption key was given.")

    def __repr__(self) -> str:
        return f"SecretBox(keys={list(self._keys)!r}, primary={self._primary!r})"

    @property
    def primary_key_id(self) -> str:
        """The id of the key new ciphertexts are made with."""
        return self._primary

    @property
    def key_ids(self) -> list[str]:
        """Every key id this box can decrypt with, oldest first."""
        return list(self._keys)

    @classmethod
    def from_key_material(cls, material: str) -> SecretBox:
        """Build a box from key text such as an environment setting the caller read.

        Accepts the key file format (``<id> <base64url key>`` lines, newest last) or one bare base64url key
        (given key id ``env``).
        """
        return cls(_parse_key_lines(material, source="the given key material"))

    @classmethod
    def generate(cls) -> SecretBox:
        """Return a box with one fresh random key (tests, throwaway stores)."""
        return cls([(_new_key_id(), AESGCM.generate_key(bit_length=256))])

    def encrypt(self, plaintext: str | Secret, *, context: str = "") -> str:
        """Encrypt ``plaintext`` under the newest key, binding ``context`` as associated data."""
        value = plaintext.reveal() if isinstance(plaintext, Secret) else plaintext
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._primary].encrypt(
            nonce, value.encode("utf-8"), self._aad(self._primary, context)
        )
        return f"{PREFIX}.{self._primary}.{_b64e(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt a ciphertext made by :meth:`encrypt` with any known key and the same ``context``."""
        key_id, blob = self._split(token)
        aead = self._keys.get(key_id)
        if aead is None:
            raise SecretsError(
                f"A stored secret was encrypted with key {key_id!r}, which is not in the key file.",
                remedy="Restore the key file that held that key, or re-enter the secret.",
            )
        try:
            plain = aead.decrypt(blob[:_NONCE], blob[_NONCE:], self._aad(key_id, context))
        except InvalidTag:
            raise SecretsError(
                "A stored secret could not be decrypted: it was altered, or belongs to another field or connection.",
                remedy="Re-enter the secret in the synapse settings.",
            ) from None
        return plain.decode("utf-8")

    def decrypt_secret(self, token: str, *, context: str = "") -> Secret:
        """Like :meth:`decrypt` but returns a :class:`Secret`."""
        return Secret(self.decrypt(token, context=context))

    def needs_rotation(self, token: str) -> bool:
        """Return True when ``token`` was made with an older key than the newest one."""
        key_id, _ = self._split(token)
        return key_id != self._primary

    def rotate(self, token: str, *, context: str = "") -> str:
        """Re-encrypt ``token`` under the newest key (returns it unchanged when it already is)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, context=context), context=context)

    @staticmethod
    def is_ciphertext(text: str) -> bool:
        """Return True when ``text`` has the shape of one of our ciphertexts."""
        return text.startswith(PREFIX + ".") and text.count(".") == 2

    @staticmethod
    def _aad(key_id: str, context: str) -> bytes:
        return f"{PREFIX}|{key_id}|{context}".encode()

    @staticmethod
    def _split(token: str) -> tuple[str, bytes]:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            raise SecretsError("A stored secret is not in dynasync's encrypted format (dsx1.<key>.<data>).")
        try:
            blob = _b64d(parts[2])
        except (binascii.Error, ValueError):
            raise SecretsError("A stored secret is corrupted (bad base64).") from None
        if len(blob) < _NONCE + 16:
            raise SecretsError("A stored secret is corrupted (too short).")
        return parts[1], blob


def _new_key_id() -> str:
    return "k" + _stdlib_secrets.token_hex(4)


def _parse_key_lines(text: str, *, source: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if len(fields) == 1 and len(lines) == 1:
            fields = ["env", fields[0]]
        if len(fields) != 2:
            raise SecretsError(f"Line {number} of {source} is not '<key id> <base64url key>'.")
        try:
            key = _b64d(fields[1])
        except (binascii.Error, ValueError):
            raise SecretsError(f"Line {number} of {source} does not hold a base64url key.") from None
        keys.append((fields[0], key))
    if not keys:
        raise SecretsError(f"{source} holds no key.")
    return keys


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"The key file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}).",
            remedy=f"Run: chmod 600 {path}",
        )


def _write_new_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def load_secret_box(home: Path, *, key_material: str | None = None) -> SecretBox:
    """Return the box for a dynasync home directory, creating ``<home>/secret.key`` (mode 0600) on first use.

    Args:
        home: The dynasync home directory (e.g. ``~/.dynasync``).
        key_material: Key text the caller took from its settings (e.g. an environment variable); when given,
            no key file is read or created.

    Raises:
        SecretsError: The key file is malformed or readable by group or others.
    """
    if key_material is not None:
        return SecretBox.from_key_material(key_material)
    path = home / KEY_FILE_NAME
    if not path.exists():
        try:
            _write_new_private(path, f"{_new_key_id()} {_b64e(AESGCM.generate_key(bit_length=256))}\n")
        except FileExistsError:
            pass  # another process created it first; read theirs
    _check_private(path)
    return SecretBox(_parse_key_lines(path.read_text(encoding="ascii"), source=str(path)))


def add_key(home: Path) -> str:
    """Append a fresh key to ``<home>/secret.key`` so new ciphertexts use it; old ones still decrypt.

    Returns:
        The new key's id.
    """
    path = home / KEY_FILE_NAME
    load_secret_box(home)  # creates the file if needed and checks permissions
    key_id = _new_key_id()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(f"{key_id} {_b64e(AESGCM.generate_key(bit_length=256))}\n")
    return key_id
