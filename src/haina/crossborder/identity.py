"""Buyer identity: the resident ID number (GB 11643-1999), its mask, its encryption at rest and
its blind index.

An ID number is 17 digits (6 region, 8 birth date, 3 sequence) and a check character: the
17 digits weighted 2^(18−i) mod 11, summed mod 11, mapped through ``10X98765432``
(GB 11643-1999 §7). Stored encrypted (AES-256-GCM, the key id beside the ciphertext so keys
can rotate); found by a keyed HMAC (the blind index, keyed apart from the encryption keys so
rotation leaves it unchanged); shown as ``3604**********0071`` everywhere but the one route
that needs the ``crossborder:identity`` scope.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# the first two digits: a province-level division (GB/T 2260), 83 Taiwan's, 91 abroad
_PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42,
                        43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
                        83, 91})
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# anything in a text that could be an unmasked ID number (tests scan responses and logs)
ID_NUMBER_PATTERN = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9Xx])")


def check_character(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_number_problem(text: str, today: dt.date | None = None) -> str | None:
    """Why ``text`` is not a valid resident ID number, or None if it is."""
    number = text.strip().upper()
    if len(number) != 18:
        return f"an ID number has 18 characters, this one {len(number)}"
    if not _SHAPE.fullmatch(number):
        return "an ID number is 17 digits and a check character (a digit or X)"
    if int(number[:2]) not in _PROVINCES:
        return f"the region code {number[:6]} names no province"
    try:
        born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"the birth date {number[6:14]} is not a real date"
    if born.year < 1900 or born > (today or dt.date.today()):
        return f"the birth date {number[6:14]} is not a possible one"
    expected = check_character(number[:17])
    if number[17] != expected:
        return f"the check character is {number[17]}, it should be {expected}"
    return None


def normalise(text: str) -> str:
    return text.strip().upper()


def mask(number: str) -> str:
    """``360403198001010071`` → ``3604**********0071``."""
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


class KeyError_(ValueError):
    """The key settings are malformed (raised when the keys are loaded)."""


@dataclass(frozen=True)
class Keys:
    """Encryption keys by id (the first is used to encrypt) and the blind-index key."""

    encrypt: dict[str, bytes]
    current: str
    index: bytes

    def seal(self, number: str) -> tuple[str, str]:
        """(key id, ciphertext): base64 of nonce + AES-GCM(number), bound to the key id."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.encrypt[self.current]).encrypt(nonce, number.encode(),
                                                           self.current.encode())
        return self.current, base64.b64encode(nonce + sealed).decode()

    def open(self, key_id: str, cipher: str) -> str:
        raw = base64.b64decode(cipher)
        if key_id not in self.encrypt:
            raise KeyError_(f"the key {key_id!r} that sealed this ID number is not configured")
        return AESGCM(self.encrypt[key_id]).decrypt(raw[:12], raw[12:], key_id.encode()).decode()

    def blind_index(self, number: str) -> str:
        return hmac.new(self.index, number.encode(), hashlib.sha256).hexdigest()


# used when HAINA_CROSSBORDER_KEYS is not set (development, tests): never in production
_DEV_SECRET = b"haina-development-only-crossborder-key"


def _key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise KeyError_("a cross-border key is 32 bytes in base64") from None
    if len(raw) != 32:
        raise KeyError_("a cross-border key is 32 bytes in base64")
    return raw


@lru_cache(maxsize=8)
def load_keys(keys: str | None, index_key: str | None) -> Keys:
    """``keys`` is ``id:base64key,id:base64key`` (the first encrypts, all decrypt);
    ``index_key`` a base64 32-byte key for the blind index."""
    if not keys:
        dev = hashlib.sha256(_DEV_SECRET).digest()
        return Keys({"dev": dev}, "dev", hashlib.sha256(_DEV_SECRET + b"/index").digest())
    encrypt: dict[str, bytes] = {}
    for part in keys.split(","):
        key_id, sep, material = part.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", key_id):
            raise KeyError_("HAINA_CROSSBORDER_KEYS is id:base64key[,id:base64key…]")
        encrypt[key_id] = _key(material)
    if not index_key:
        raise KeyError_("HAINA_CROSSBORDER_INDEX_KEY must be set with HAINA_CROSSBORDER_KEYS")
    return Keys(encrypt, next(iter(encrypt)), _key(index_key))


def keys_from_settings() -> Keys:
    from haina.core.config import get_settings
    s = get_settings()
    return load_keys(s.crossborder_keys, s.crossborder_index_key)
