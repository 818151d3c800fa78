"""Known-answer tests of the two signature algorithms against the vendors' published examples."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from lwork.accounts import acs3_signing, tc3_signing

# Aliyun, "V3 request structure and signature": RunInstances on ECS cn-shanghai.
ALIYUN_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}


def test_acs3_matches_aliyuns_published_example() -> None:
    headers = acs3_signing.sign(
        method="POST",
        host="ecs.cn-shanghai.aliyuncs.com",
        path="/",
        query=ALIYUN_QUERY,
        body=b"",
        action="RunInstances",
        version="2014-05-26",
        date="2023-10-26T10:22:32Z",
        nonce="3156853299f313e23d1673dc12e1703d",
        key_id="YourAccessKeyId",
        secret="YourAccessKeySecret",
    )
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    request = acs3_signing.canonical_request("POST", "/", ALIYUN_QUERY, unsigned, b"")
    # The documented hashed canonical request, then the documented Authorization.
    assert hashlib.sha256(request.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    assert headers["Authorization"] == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_acs3_percent_encoding_is_rfc3986() -> None:
    assert acs3_signing.percent_encode("a b*c~d+e/é") == "a%20b%2Ac~d%2Be%2F%C3%A9"
    assert acs3_signing.canonical_query({"b": "2", "a": "x y"}) == "a=x%20y&b=2"


# Tencent, "Signature v3": DescribeInstances on CVM, timestamp 1551113065.
TENCENT_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)


def test_tc3_matches_tencents_published_example() -> None:
    headers = {"content-type": "application/json; charset=utf-8",
               "host": "cvm.tencentcloudapi.com"}  # fmt: skip
    request = tc3_signing.canonical_request("POST", "", headers, TENCENT_PAYLOAD)
    assert hashlib.sha256(TENCENT_PAYLOAD).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert hashlib.sha256(request.encode()).hexdigest() == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    authorization = tc3_signing.authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        timestamp=1551113065,
        signed_headers=headers,
        body=TENCENT_PAYLOAD,
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_tc3_scope_date_is_utc() -> None:
    # 2019-02-26 00:44:25 in Beijing is still the 25th in UTC (the documentation's warning).
    assert tc3_signing.utc_date(1551113065) == "2019-02-25"


@given(st.dictionaries(st.text(min_size=1), st.text()))
def test_acs3_canonical_query_is_order_free_and_unambiguous(params: dict[str, str]) -> None:
    query = acs3_signing.canonical_query(params)
    assert query == acs3_signing.canonical_query(dict(reversed(list(params.items()))))
    # Every separator in the result is ours: names and values cannot forge a parameter.
    assert query.count("&") == max(len(params) - 1, 0)
    assert query.count("=") == len(params)
