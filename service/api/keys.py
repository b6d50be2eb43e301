"""API keys and who a request is: a verified key's id (never the key itself), else the client's address.

Keys are tenants: a job, an upload and a job-made model belong to the id of the key that made them, and
quotas, queue bounds and rate buckets are counted per id. An admin key (GANSERVE_ADMIN_KEYS) is a key
that may also act on what other keys own. The Authorization header is parsed once, the same way for
every check: the scheme `Bearer` in any case, the key with surrounding spaces removed; the key is
compared with every configured key in constant time, so neither a match nor its position leaks by timing.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

ANONYMOUS = "anonymous"  # the owner of what was made while no keys are configured


@dataclass(frozen=True)
class Caller:
    """Who made a request."""
    id: str  # the owner of what it makes: "key:<16 hex of sha256(key)>", else ANONYMOUS (no keys configured)
    bucket: str  # what its rate and queue bounds count against: the key's id, else "addr:<client address>"
    keyed: bool  # a configured key was sent and matched
    admin: bool = False

    def owns(self, owner: str | None) -> bool:
        """Whether this caller may see and act on what `owner` made (admins: on everything)."""
        return self.admin or owner == self.id


def key_id(key: str) -> str:
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def parse(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (scheme in any case, spaces around), else None."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


class Keys:
    """The configured keys: which a request sent, in constant time."""

    def __init__(self, keys: list[str], admin_keys: list[str] = ()):
        admins = set(admin_keys)
        self.entries = [(key.encode(), key_id(key), key in admins) for key in dict.fromkeys([*keys, *admin_keys])]

    @property
    def required(self) -> bool:
        """Whether keyed routes need a key (none configured: they are open, and owners are addresses)."""
        return bool(self.entries)

    def verify(self, given: str | None) -> Caller | None:
        """The caller a key belongs to, or None; every configured key is compared, whatever matched."""
        if given is None:
            return None
        raw, found = given.encode(), None
        for key, ident, admin in self.entries:
            if hmac.compare_digest(raw, key) and found is None:
                found = Caller(ident, ident, keyed=True, admin=admin)
        return found

    def caller(self, authorization: str | None, address: str) -> Caller:
        """A verified key's caller, else the address's: an unknown or missing key counts as its address, and
        owns nothing while keys are configured (keyed routes refuse it before any body is read)."""
        verified = self.verify(parse(authorization))
        if verified is not None:
            return verified
        return Caller(ANONYMOUS if not self.required else f"addr:{address}", f"addr:{address}", keyed=False,
                      admin=not self.required)  # no keys configured: one tenant, who may act on everything
