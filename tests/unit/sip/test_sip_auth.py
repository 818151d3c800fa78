"""Digest authentication against the published RFC 2617 and RFC 7616 examples."""

from pathlib import Path

import pytest

from lwork.sip.auth import (
    DigestChallenge,
    DigestCredentials,
    answer_challenge,
    authorization_header_name,
    challenge_header_name,
    compute_response,
    verify_credentials,
)
from lwork.sip.message import parse_message

DATA = Path(__file__).parents[2] / "data" / "sip"

# RFC 2617 section 3.5.
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, '
    'cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

# RFC 7616 section 3.9.1.
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc2617_example_response() -> None:
    challenge = DigestChallenge.parse(RFC2617_CHALLENGE)
    assert challenge.qop == ("auth", "auth-int") and challenge.algorithm == "MD5"
    credentials = answer_challenge(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    assert credentials.response == "6629fae49393a05397450978507c4ef1"
    assert (credentials.qop, credentials.nc) == ("auth", "00000001")
    assert credentials.opaque == "5ccc069c403ebaf9f0171e9517f40e41"


def test_rfc2617_example_authorization_verifies() -> None:
    credentials = DigestCredentials.parse(RFC2617_AUTHORIZATION)
    assert credentials.username == "Mufasa" and credentials.cnonce == "0a4f113b"
    assert verify_credentials(credentials, password="Circle Of Life", method="GET")
    assert not verify_credentials(credentials, password="Circle of Life", method="GET")
    assert not verify_credentials(credentials, password="Circle Of Life", method="POST")


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    challenge = DigestChallenge.parse(RFC7616_CHALLENGE.format(algorithm=algorithm))
    credentials = answer_challenge(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    assert credentials.response == expected
    assert str(credentials).startswith('Digest username="Mufasa", realm="http-auth@example.org"')
    assert verify_credentials(
        DigestCredentials.parse(str(credentials)), password="Circle of Life", method="GET"
    )


def test_answer_to_the_captured_401_matches_the_captured_register() -> None:
    challenged = parse_message((DATA / "unauthorized.sip").read_bytes())
    retried = parse_message((DATA / "register_auth.sip").read_bytes())
    header = challenge_header_name(401)
    challenge = DigestChallenge.parse(challenged.headers.get(header) or "")
    credentials = answer_challenge(
        challenge,
        username="862150001234",
        password="s3cret-trunk",
        method="REGISTER",
        uri="sip:ims.carrier.example",
        cnonce="0a4f113b9c7d2e1f",
    )
    assert str(credentials) == retried.headers.get(authorization_header_name(401))
    received = DigestCredentials.parse(retried.headers.get("Authorization") or "")
    assert verify_credentials(received, password="s3cret-trunk", method="REGISTER")


def test_proxy_challenge_with_sha256_and_auth_int_choice() -> None:
    response = parse_message((DATA / "proxy_auth_required.sip").read_bytes())
    challenge = DigestChallenge.parse(response.headers.get(challenge_header_name(407)) or "")
    assert challenge.algorithm == "SHA-256" and challenge.qop == ("auth", "auth-int")
    credentials = answer_challenge(
        challenge,
        username="862150001234",
        password="pw",
        method="INVITE",
        uri="sip:8613800138000@trunk.carrier.example",
        cnonce="abc",
        nonce_count=2,
    )
    assert authorization_header_name(407) == "Proxy-Authorization"
    assert credentials.nc == "00000002" and len(credentials.response) == 64
    assert verify_credentials(credentials, password="pw", method="INVITE")


def test_auth_int_and_sess_variants_cover_the_body_and_cnonce() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", algorithm="MD5-sess", qop=("auth-int",))
    credentials = answer_challenge(
        challenge,
        username="u",
        password="p",
        method="INVITE",
        uri="sip:x@y",
        cnonce="c",
        body=b"v=0\r\n",
    )
    assert credentials.qop == "auth-int"
    assert verify_credentials(credentials, password="p", method="INVITE", body=b"v=0\r\n")
    assert not verify_credentials(credentials, password="p", method="INVITE", body=b"v=1\r\n")
    other_cnonce = compute_response(
        algorithm="MD5-sess",
        username="u",
        realm="r",
        password="p",
        nonce="n",
        method="INVITE",
        uri="sip:x@y",
        qop="auth-int",
        nc="00000001",
        cnonce="d",
        body=b"v=0\r\n",
    )
    assert other_cnonce != credentials.response


def test_challenge_without_qop_uses_rfc2069_response() -> None:
    challenge = DigestChallenge.parse('Digest realm="sip.example", nonce="abc"')
    credentials = answer_challenge(
        challenge, username="u", password="p", method="BYE", uri="sip:a@b", cnonce="ignored"
    )
    assert credentials.qop is None and credentials.cnonce is None
    text = str(credentials)
    assert "qop" not in text and "nc=" not in text
    assert verify_credentials(DigestCredentials.parse(text), password="p", method="BYE")


def test_challenge_serialises_and_parses_back() -> None:
    challenge = DigestChallenge(
        realm="r", nonce="n", algorithm="SHA-256", qop=("auth",), opaque="o", stale=True
    )
    assert DigestChallenge.parse(str(challenge)) == challenge


@pytest.mark.parametrize(
    "text",
    [
        'Basic realm="x"',
        'Digest realm="x"',
        'Digest nonce="x"',
        'Digest realm="x", nonce="y", algorithm=SHA-1',
        'Digest realm="x", realm="y", nonce="z"',
        'Digest realm="x, nonce="y"',
        'Digest realm="x", =y, nonce="z"',
    ],
)
def test_malformed_challenges_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        DigestChallenge.parse(text)


def test_credentials_need_nc_and_cnonce_with_qop_and_unsupported_qop_is_refused() -> None:
    with pytest.raises(ValueError):
        DigestCredentials.parse(
            'Digest username="u", realm="r", nonce="n", uri="u", response="x", qop=auth'
        )
    with pytest.raises(ValueError):
        answer_challenge(
            DigestChallenge(realm="r", nonce="n", qop=("auth-conf",)),
            username="u",
            password="p",
            method="BYE",
            uri="sip:a@b",
            cnonce="c",
        )


def test_unknown_algorithm_in_credentials_does_not_verify() -> None:
    credentials = DigestCredentials(
        username="u", realm="r", nonce="n", uri="sip:a@b", response="00", algorithm="SHA-1"
    )
    assert not verify_credentials(credentials, password="p", method="BYE")
