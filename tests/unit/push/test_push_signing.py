"""Pure request building, signing and classification of the push providers (no I/O).

The Baidu vectors were derived by hand from the documented algorithm
``md5(urlencode(METHOD + url + sorted k=v pairs + secret_key))`` with PHP urlencode rules; the
MD5 of the hand-encoded string was computed with coreutils ``md5sum``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from lwork.push.providers import (
    BaiduConfig,
    PushMessage,
    RetryPolicy,
    ServiceAccount,
    backoff_delay,
    baidu_sign,
    build_apns_request,
    build_baidu_request,
    build_fcm_message,
    classify_apns_response,
    classify_baidu_response,
    classify_fcm_response,
    make_apns_jwt,
    make_google_service_jwt,
)
from lwork.push.providers.baidu import php_urlencode
from lwork.push.providers.base import Delivered, RetryLater, TokenRejected, Undeliverable
from lwork.push.providers.fcm_auth import AccessToken
from lwork.push.providers.httputil import parse_retry_after

BAIDU_URL = "http://api.tuisong.baidu.com/rest/3.0/push/single_device"
BAIDU_PARAMS = {
    "apikey": "Ljt8T9",
    "timestamp": "1427174155",
    "device_type": "3",
    "channel_id": "4576635148078535327",
    "msg_type": "0",
    "msg": '{"event":"shake_hand"}',
    "msg_expires": "30",
}
BAIDU_SECRET = "s3cr~t k"
# Sorted pairs, then PHP urlencode of the whole gathered string, by hand:
BAIDU_ENCODED = (
    "POSThttp%3A%2F%2Fapi.tuisong.baidu.com%2Frest%2F3.0%2Fpush%2Fsingle_device"
    "apikey%3DLjt8T9channel_id%3D4576635148078535327device_type%3D3"
    "msg%3D%7B%22event%22%3A%22shake_hand%22%7Dmsg_expires%3D30msg_type%3D0"
    "timestamp%3D1427174155s3cr%7Et+k"
)
BAIDU_SIGN = "8874159a0f4ea745810f6b89e0ab76cc"  # md5sum of BAIDU_ENCODED

CALL = PushMessage(
    event="p2p_inform_called",
    payload={"event": "p2p_inform_called", "caller": "100", "opdata": {"session_id": "s9"}},
    kind="call",
)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, claims, signature = token.split(".")
    return (
        json.loads(_b64decode(header)),
        json.loads(_b64decode(claims)),
        f"{header}.{claims}".encode(),
        _b64decode(signature),
    )


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


# -- Baidu -----------------------------------------------------------------------------------


def test_php_urlencode_keeps_only_alnum_and_underscore_dot_dash() -> None:
    assert php_urlencode("a b*~中_.-") == "a+b%2A%7E%E4%B8%AD_.-"
    assert php_urlencode("k=v&x/y:z") == "k%3Dv%26x%2Fy%3Az"


def test_baidu_sign_matches_hand_computed_vector() -> None:
    assert php_urlencode("POST" + BAIDU_URL) == (
        "POSThttp%3A%2F%2Fapi.tuisong.baidu.com%2Frest%2F3.0%2Fpush%2Fsingle_device"
    )
    pairs = "".join(f"{key}={value}" for key, value in sorted(BAIDU_PARAMS.items()))
    assert php_urlencode(f"POST{BAIDU_URL}{pairs}{BAIDU_SECRET}") == BAIDU_ENCODED
    assert baidu_sign("POST", BAIDU_URL, BAIDU_PARAMS, BAIDU_SECRET) == BAIDU_SIGN


def test_baidu_sign_ignores_an_existing_sign_field_and_param_order() -> None:
    reordered = dict(reversed(list(BAIDU_PARAMS.items())))
    reordered["sign"] = "stale"
    assert baidu_sign("post", BAIDU_URL, reordered, BAIDU_SECRET) == BAIDU_SIGN


def test_build_baidu_request_produces_the_vector() -> None:
    config = BaiduConfig(
        api_key="Ljt8T9", secret_key=BAIDU_SECRET, base_url="http://api.tuisong.baidu.com/rest/3.0/"
    )
    message = PushMessage(event="shake_hand", payload={"event": "shake_hand"}, ttl_s=30)
    request = build_baidu_request(config, message, "4576635148078535327", now=1427174155.9)
    assert request.url == BAIDU_URL
    assert request.params == {**BAIDU_PARAMS, "sign": BAIDU_SIGN}
    assert b"msg=%7B%22event%22%3A%22shake_hand%22%7D" in request.body


def test_build_baidu_request_for_an_ios_app_wraps_in_aps() -> None:
    config = BaiduConfig(api_key="k", secret_key="s", device_type=4, deploy_status=1)
    request = build_baidu_request(config, CALL, "42", now=0)
    assert json.loads(request.params["msg"]) == {"aps": {}, "lwork": dict(CALL.payload)}
    assert request.params["deploy_status"] == "1" and request.params["device_type"] == "4"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"request_id":1,"response_params":{"msg_id":"2423453","send_time":1}}',
         Delivered()),
        (404, b'{"request_id":1,"error_code":30608,"error_msg":"Bind Relation Not Found"}',
         TokenRejected("baidu error 30608: Bind Relation Not Found")),
        (400, b'{"request_id":1,"error_code":30607,"error_msg":"Channel Token Timeout"}',
         TokenRejected("baidu error 30607: Channel Token Timeout")),
        (500, b'{"request_id":1,"error_code":30600,"error_msg":"Internal Server Error"}',
         RetryLater("baidu error 30600: Internal Server Error", 5.0)),
        (401, b'{"request_id":1,"error_code":30603,"error_msg":"Authentication Failed"}',
         Undeliverable("baidu error 30603: Authentication Failed")),
    ],
)  # fmt: skip
def test_classify_baidu_response(status: int, body: bytes, expected: object) -> None:
    assert classify_baidu_response(status, body, 5.0) == expected


def test_classify_baidu_garbage() -> None:
    assert isinstance(classify_baidu_response(502, b"<html>", None), RetryLater)
    assert isinstance(classify_baidu_response(403, b"<html>", None), Undeliverable)


# -- FCM -------------------------------------------------------------------------------------


def test_build_fcm_message_is_a_high_priority_data_message() -> None:
    message = PushMessage("login_otherwhere", {"event": "login_otherwhere"}, collapse_id="acct")
    assert build_fcm_message(message, "tok") == {
        "message": {
            "token": "tok",
            "data": {"event": "login_otherwhere", "payload": '{"event":"login_otherwhere"}'},
            "android": {"priority": "HIGH", "ttl": "3600s", "collapse_key": "acct"},
        }
    }
    call = build_fcm_message(CALL, "t")["message"]
    assert isinstance(call, dict) and call["android"] == {"priority": "HIGH", "ttl": "30s"}


FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
NOT_A_TOKEN = "The registration token is not a valid FCM registration token"


def _fcm_body(
    status: str, *, error_code: str | None = None, field: str | None = None, message: str = "x"
) -> bytes:
    details: list[dict[str, object]] = []
    if error_code:
        details.append({"@type": FCM_ERROR, "errorCode": error_code})
    if field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": field}]})
    error = {"code": 0, "message": message, "status": status, "details": details}
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b'{"name":"projects/p/messages/0:1"}', Delivered),
        (404, _fcm_body("NOT_FOUND", error_code="UNREGISTERED"), TokenRejected),
        (403, _fcm_body("PERMISSION_DENIED", error_code="SENDER_ID_MISMATCH"), TokenRejected),
        (400, _fcm_body("INVALID_ARGUMENT", error_code="INVALID_ARGUMENT", message=NOT_A_TOKEN),
         TokenRejected),
        (400, _fcm_body("INVALID_ARGUMENT", field="message.token"), TokenRejected),
        (400, _fcm_body("INVALID_ARGUMENT", field="message.data[0].value"), Undeliverable),
        (429, _fcm_body("RESOURCE_EXHAUSTED", error_code="QUOTA_EXCEEDED"), RetryLater),
        (503, _fcm_body("UNAVAILABLE"), RetryLater),
        (500, b"not json", RetryLater),
        (401, _fcm_body("UNAUTHENTICATED"), RetryLater),
        (401, _fcm_body("UNAUTHENTICATED", error_code="THIRD_PARTY_AUTH_ERROR"), Undeliverable),
        (400, b"not json", Undeliverable),
    ],
)  # fmt: skip
def test_classify_fcm_response(status: int, body: bytes, kind: type) -> None:
    assert isinstance(classify_fcm_response(status, body, None), kind)


def test_google_service_jwt_claims_and_signature() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount(
        "sa@p.iam.gserviceaccount.com", _pem(key), "kid9", "p", "https://t/token"
    )
    header, claims, signed, signature = _decode_jwt(make_google_service_jwt(account, 1700000000.7))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "kid9"}
    assert claims == {
        "iss": "sa@p.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://t/token",
        "iat": 1700000000,
        "exp": 1700003600,
    }
    key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())


def test_service_account_parse() -> None:
    text = json.dumps(
        {"type": "service_account", "project_id": "p", "private_key_id": "k", "private_key": "PEM",
         "client_email": "sa@p", "token_uri": "https://oauth2.googleapis.com/token"}
    )  # fmt: skip
    assert ServiceAccount.parse(text) == ServiceAccount("sa@p", "PEM", "k", "p")
    with pytest.raises(ValueError):
        ServiceAccount.parse('{"type": "authorized_user"}')
    with pytest.raises(ValueError):
        ServiceAccount.parse('{"client_email": "x"}')


def test_access_token_parse() -> None:
    token = AccessToken.parse(
        b'{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}', 100.0
    )
    assert token == AccessToken("ya29.a", 3699.0)
    assert token.is_fresh(3398.0, 300) and not token.is_fresh(3400.0, 300)
    bad_answers = [
        b"{}",
        b"[]",
        b'{"access_token":"a","expires_in":true}',
        b'{"access_token":"a","expires_in":0}',
        b'{"access_token":"a","expires_in":5,"token_type":"MAC"}',
    ]
    for bad in bad_answers:
        with pytest.raises(ValueError):
            AccessToken.parse(bad, 0.0)


# -- APNs ------------------------------------------------------------------------------------


def test_apns_jwt_header_claims_and_raw_es256_signature() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = make_apns_jwt("TEAM123456", "KEY1234567", _pem(key), 1700000000.9)
    header, claims, signed, signature = _decode_jwt(token)
    assert header == {"alg": "ES256", "kid": "KEY1234567"}
    assert claims == {"iss": "TEAM123456", "iat": 1700000000}
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))


def test_apns_jwt_refuses_a_non_p256_key() -> None:
    with pytest.raises(ValueError):
        make_apns_jwt("T", "K", _pem(ec.generate_private_key(ec.SECP384R1())), 0)
    with pytest.raises(ValueError):
        make_apns_jwt("T", "K", "not a pem", 0)


def test_build_apns_request_for_a_call_is_voip() -> None:
    request = build_apns_request(CALL, "abcd", "com.example.app", now=1000.5)
    assert request.path == "/3/device/abcd"
    assert request.headers == {
        "apns-push-type": "voip",
        "apns-topic": "com.example.app.voip",
        "apns-priority": "10",
        "apns-expiration": "1030",
    }
    assert json.loads(request.body) == {"aps": {}, "lwork": dict(CALL.payload)}


def test_build_apns_request_for_an_account_event_is_an_alert() -> None:
    message = PushMessage(
        "login_otherwhere",
        {"event": "login_otherwhere"},
        alert="Logged in elsewhere",
        collapse_id="c",
    )
    request = build_apns_request(message, "ab", "com.example.app", now=0)
    assert request.headers == {
        "apns-push-type": "alert",
        "apns-topic": "com.example.app",
        "apns-priority": "10",
        "apns-expiration": "3600",
        "apns-collapse-id": "c",
    }
    assert json.loads(request.body)["aps"] == {"alert": "Logged in elsewhere", "sound": "default"}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, b"", Delivered),
        (410, b'{"reason":"Unregistered","timestamp":1700000000000}', TokenRejected),
        (410, b'{"reason":"ExpiredToken"}', TokenRejected),
        (400, b'{"reason":"BadDeviceToken"}', TokenRejected),
        (400, b'{"reason":"DeviceTokenNotForTopic"}', TokenRejected),
        (400, b'{"reason":"BadTopic"}', Undeliverable),
        (403, b'{"reason":"InvalidProviderToken"}', Undeliverable),
        (403, b'{"reason":"ExpiredProviderToken"}', RetryLater),
        (429, b'{"reason":"TooManyRequests"}', RetryLater),
        (500, b'{"reason":"InternalServerError"}', RetryLater),
        (503, b'{"reason":"ServiceUnavailable"}', RetryLater),
        (413, b'{"reason":"PayloadTooLarge"}', Undeliverable),
        (502, b"garbage", RetryLater),
    ],
)
def test_classify_apns_response(status: int, body: bytes, kind: type) -> None:
    assert isinstance(classify_apns_response(status, body, None), kind)


# -- retry policy ----------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, max_retry_after_s=60.0)
    assert [backoff_delay(policy, n, None) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delay(policy, 1, 10.0) == 10.0
    assert backoff_delay(policy, 4, 1.0) == 4.0  # never shorter than the computed backoff
    assert backoff_delay(policy, 1, 61.0) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("120", 0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after("-5", 0) is None
    assert parse_retry_after("9" * 400, 0) is None


def test_push_message_defaults_and_validation() -> None:
    assert CALL.effective_ttl_s == 30
    assert PushMessage("e", {}).effective_ttl_s == 3600
    with pytest.raises(ValueError):
        PushMessage("e", {}, kind="sms")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PushMessage("e", {}, ttl_s=-1)
