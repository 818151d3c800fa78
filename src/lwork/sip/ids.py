"""Random identifiers for SIP: branches, tags, Call-IDs and digest cnonces."""

from lwork.ids import random_hex

# RFC 3261 8.1.1.7: a branch starting with this cookie promises RFC 3261 transaction matching.
BRANCH_MAGIC_COOKIE = "z9hG4bK"


def new_branch() -> str:
    return BRANCH_MAGIC_COOKIE + random_hex(12)


def new_tag() -> str:
    return random_hex(8)


def new_call_id(host: str | None = None) -> str:
    token = random_hex(16)
    return token if host is None else f"{token}@{host}"


def new_cnonce() -> str:
    return random_hex(16)
