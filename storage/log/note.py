"""C2SP signed notes (c2sp.org/signed-note) with Ed25519, and the key strings of Go's sumdb/note.

A note is text ending in a newline, a blank line, then signature lines `— <name> <base64(key id
|| signature)>`. The key id is SHA-256(name || 0x0A || 0x01 || public key)[:4]. Keys travel as
the strings golang.org/x/mod/sumdb/note uses, so Go tooling reads them unchanged:

    verifier key:  <name>+<key id hex>+<base64(0x01 || 32-byte public key)>
    signer key:    PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || 32-byte seed)>

The signer key lives in a file (mode 0600) named in settings; `load_or_create_signer` makes a
fresh one on first start in local mode. Ed25519 comes from the `cryptography` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "NoteError",
    "Signer",
    "Verifier",
    "b64decode_strict",
    "generate_signer",
    "key_id",
    "load_or_create_signer",
    "open_note",
    "sign_note",
]

ALG_ED25519: Final = 0x01
_DASH: Final = "\u2014"
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_MAX_SIGNATURES: Final = 100
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A malformed note or key, or no trusted signature that verifies."""


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def key_id(name: str, public: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x01 || public key)[:4], as signed-note recommends."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def b64decode_strict(text: str) -> bytes:
    """Strict standard base64: padding required, and the text must be the canonical encoding."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"not base64: {text[:40]!r}") from exc
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"not canonical base64: {text[:40]!r}")
    return raw


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trusted Ed25519 key: its name, 4-byte id and public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse `<name>+<hex id>+<base64(0x01 || key)>`; the id must match the key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteError("a verifier key is <name>+<8 hex digits>+<base64 key>")
        raw = b64decode_strict(parts[2])
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
        verifier = cls(parts[0], bytes.fromhex(parts[1]), raw[1:])
        if key_id(verifier.name, verifier.public_key) != verifier.key_id:
            raise NoteError("the verifier key's id does not match its name and key")
        return verifier

    def vkey(self) -> str:
        """The verifier key string (what /api/log/key serves and auditors keep)."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when `signature` is this key's Ed25519 signature of `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 signing key with its note name."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`."""
        text = skey.strip()
        if not text.startswith(_PRIVATE_PREFIX):
            raise NoteError("a signer key starts with PRIVATE+KEY+")
        parts = text[len(_PRIVATE_PREFIX) :].split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 seed>")
        raw = b64decode_strict(parts[2])
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 signer keys (type 0x01, 32-byte seed) are supported")
        signer = cls(parts[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != parts[1]:
            raise NoteError("the signer key's id does not match its name and key")
        return signer

    @property
    def verifier(self) -> Verifier:
        """The matching verifier."""
        public = _raw_public(self.private_key.public_key())
        return Verifier(self.name, key_id(self.name, public), public)

    def skey(self) -> str:
        """The signer key string (secret: written only to the key file)."""
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_PREFIX}{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def signature_line(self, text: str) -> str:
        """`— <name> <base64(key id || signature)>` for the note text."""
        signature = self.private_key.sign(text.encode())
        return f"{_DASH} {self.name} {base64.b64encode(self.verifier.key_id + signature).decode()}\n"


def generate_signer(name: str) -> Signer:
    """A fresh random Ed25519 key named `name` (a schema-less URL such as `govtrack.local/log`)."""
    if not _valid_name(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return Signer(name, Ed25519PrivateKey.generate())


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text):
        raise NoteError("note text must not contain control characters other than newline")


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: text, a blank line, one signature line."""
    _check_text(text)
    return text + "\n" + signer.signature_line(text)


def open_note(note: str, verifiers: list[Verifier]) -> str:
    """The note's text, once at least one signature of a known key verifies and none fails.

    Signatures by unknown keys (a different name or id) are ignored, as the spec requires; a
    known key's signature that does not verify rejects the whole note.

    Raises:
        NoteError: malformed, or no known key's signature verifies, or one fails.
    """
    if _CONTROL.search(note) or not note.endswith("\n"):
        raise NoteError("malformed note: control characters, or no final newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, lines = note[: split + 1], note[split + 2 :].splitlines()
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise NoteError("malformed note: no signature lines, or too many")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = 0
    for line in lines:
        verified += _check_signature(line, text, known)
    if not verified:
        raise NoteError("no signature by a trusted key")
    return text


def _check_signature(line: str, text: str, known: dict[tuple[str, bytes], Verifier]) -> int:
    """1 when `line` is a known key's valid signature, 0 for an unknown key; raise otherwise."""
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != _DASH or not _valid_name(parts[1]):
        raise NoteError(f"malformed signature line: {line[:60]!r}")
    blob = b64decode_strict(parts[2])
    if len(blob) < 5:
        raise NoteError("malformed signature: too short")
    verifier = known.get((parts[1], blob[:4]))
    if verifier is None:
        return 0
    if not verifier.verify(text.encode(), blob[4:]):
        raise NoteError(f"the signature of {verifier.name} does not verify")
    return 1


def load_or_create_signer(path: Path, name: str, *, create: bool) -> tuple[Signer, bool]:
    """The signer from the key file at `path`; with `create`, a new key written there if absent.

    Returns:
        (signer, created): created is True when a fresh key was written (say so in the log).

    Raises:
        FileNotFoundError: no file and `create` is False.
        NoteError: the file does not hold a valid signer key, or its name is not `name`.
    """
    if path.exists():
        signer = Signer.from_skey(path.read_text(encoding="utf-8"))
        if signer.name != name:
            raise NoteError(f"the key in {path} is named {signer.name!r}, the log's origin is {name!r}")
        return signer, False
    if not create:
        raise FileNotFoundError(f"no log signing key at {path}")
    signer = generate_signer(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(signer.skey() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return signer, True
