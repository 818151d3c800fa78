"""Digest access authentication for SIP (RFC 3261 22, RFC 2617, RFC 7616).

Client side: parse a WWW-Authenticate / Proxy-Authenticate challenge and answer it with
``answer_challenge``. Server side: ``verify_credentials`` recomputes the response with the
stored password. MD5, SHA-256 and their -sess variants; qop auth, auth-int, or none (RFC 2069).
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from lwork.sip.grammar import quote, require_token, split_outside_quotes, unquote

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}


def _hash_for(algorithm: str) -> Callable[[bytes], str]:
    base = algorithm.upper().removesuffix("-SESS")
    if base not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _HASHES[base]


def _parse_auth_params(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ValueError(f"not a Digest header: {scheme[:20]!r}")
    params: dict[str, str] = {}
    for part in split_outside_quotes(rest, ","):
        if not part.strip():
            continue
        name, equals, raw = part.partition("=")
        name = require_token(name.strip(), "auth parameter").lower()
        if not equals or name in params:
            raise ValueError(f"bad or repeated auth parameter {name!r}")
        params[name] = unquote(raw.strip())
    return params


def _need(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise ValueError(f"digest parameter {name!r} missing")
    return params[name]


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """A ``Digest`` challenge from a 401 or 407 response."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> "DigestChallenge":
        params = _parse_auth_params(value)
        algorithm = params.get("algorithm", "MD5")
        _hash_for(algorithm)
        qop = (
            tuple(q.strip() for q in params["qop"].split(",") if q.strip())
            if "qop" in params
            else ()
        )
        return cls(
            realm=_need(params, "realm"),
            nonce=_need(params, "nonce"),
            algorithm=algorithm,
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        )

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}", f"nonce={quote(self.nonce)}"]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=TRUE")
        parts.append(f"algorithm={self.algorithm}")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """The ``Digest`` answer carried in Authorization / Proxy-Authorization."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> "DigestCredentials":
        params = _parse_auth_params(value)
        qop = params.get("qop")
        if qop is not None and ("nc" not in params or "cnonce" not in params):
            raise ValueError("qop given without nc and cnonce")
        return cls(
            username=_need(params, "username"),
            realm=_need(params, "realm"),
            nonce=_need(params, "nonce"),
            uri=_need(params, "uri"),
            response=_need(params, "response"),
            algorithm=params.get("algorithm", "MD5"),
            qop=qop,
            nc=params.get("nc"),
            cnonce=params.get("cnonce"),
            opaque=params.get("opaque"),
        )

    def __str__(self) -> str:
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc}", f"cnonce={quote(self.cnonce or '')}"]
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 section 3.4.1."""
    digest = _hash_for(algorithm)
    ha1 = digest(f"{username}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = digest(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + digest(body)
    ha2 = digest(a2.encode())
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}".encode())
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


def answer_challenge(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nonce_count: int = 1,
    body: bytes = b"",
) -> DigestCredentials:
    """Credentials for ``method uri``; qop auth is preferred over auth-int when offered."""
    qop = next((q for q in ("auth", "auth-int") if q in challenge.qop), None)
    if challenge.qop and qop is None:
        raise ValueError(f"no supported qop in {challenge.qop}")
    nc = f"{nonce_count:08x}" if qop else None
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc,
        cnonce=cnonce if qop else None,
        body=body,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc,
        cnonce=cnonce if qop else None,
        opaque=challenge.opaque,
    )


def verify_credentials(
    credentials: DigestCredentials, *, password: str, method: str, body: bytes = b""
) -> bool:
    """Whether ``credentials`` prove knowledge of ``password``; the caller checks the nonce."""
    try:
        expected = compute_response(
            algorithm=credentials.algorithm,
            username=credentials.username,
            realm=credentials.realm,
            password=password,
            nonce=credentials.nonce,
            method=method,
            uri=credentials.uri,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
            body=body,
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, credentials.response.lower())


def authorization_header_name(status_code: int) -> str:
    """Where the answer to a 401 or 407 challenge goes."""
    return "Proxy-Authorization" if status_code == 407 else "Authorization"


def challenge_header_name(status_code: int) -> str:
    return "Proxy-Authenticate" if status_code == 407 else "WWW-Authenticate"
