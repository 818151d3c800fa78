"""A WeChat Pay notification's parser: a genuine one is read exactly, and anything else (any
bytes, any headers, any JSON, any resource, correctly signed or not) is NotVerified, never
another error."""

from __future__ import annotations

import json
import secrets
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwork.payments.provider import Notice, NotVerified, RefundNotice
from lwork.payments.wechat import WechatProvider
from lwork.payments.wechat_signing import (
    app_pay_message,
    decrypt,
    encrypt,
    reply_message,
    request_message,
)
from lwork.settings.payments import WechatSettings

from fakes.wechatpay import (
    APP_ID,
    MCH_ID,
    MERCHANT_SERIAL,
    PLATFORM_SERIAL,
    FakeWechatPay,
    new_key,
    private_pem,
    public_pem,
)

MERCHANT = new_key()
API_V3_KEY = secrets.token_hex(16).encode()
FAKE = FakeWechatPay(MERCHANT.public_key(), API_V3_KEY)
PROVIDER = WechatProvider(
    WechatSettings(
        enabled=True, app_id=APP_ID, mch_id=MCH_ID, merchant_serial_no=MERCHANT_SERIAL,
        merchant_private_key=private_pem(MERCHANT), api_v3_key=API_V3_KEY.decode(),  # type: ignore[arg-type]
        platform_keys={PLATFORM_SERIAL: public_pem(FAKE.key)},
        notify_url="https://pay.example.com/lwork/pay/notify/wechat",
    ),
    time.time,
)  # fmt: skip
TRANSACTION = {"appid": APP_ID, "mchid": MCH_ID, "out_trade_no": "P1",
               "transaction_id": "4200000001", "trade_state": "SUCCESS",
               "amount": {"total": 3000, "currency": "CNY"}}  # fmt: skip


def test_the_message_layouts_of_the_documentation() -> None:
    assert request_message("POST", "/v3/pay/transactions/app", "1554208460", "N", "{}") == (
        b"POST\n/v3/pay/transactions/app\n1554208460\nN\n{}\n"
    )
    assert reply_message("1554209980", "N", b'{"a":1}') == b'1554209980\nN\n{"a":1}\n'
    assert app_pay_message("wx1", "1", "N", "wx20") == b"wx1\n1\nN\nwx20\n"


def test_a_genuine_notification_is_read_exactly() -> None:
    for state, event, trade_no in (("SUCCESS", "paid", "4200000001"), ("CLOSED", "closed", ""),
                                   ("NOTPAY", "pending", "")):  # fmt: skip
        body = FAKE.notification({**TRANSACTION, "trade_state": state})
        notice = PROVIDER.verify(body, {k.lower(): v for k, v in FAKE.signed_headers(body).items()})
        assert isinstance(notice, Notice)
        assert (notice.payid, notice.trade_no, notice.money_fen, notice.event) == (
            "P1", trade_no, 3000, event,
        )  # fmt: skip
        assert notice.mismatch is None


def test_a_genuine_refund_notice_is_read_exactly() -> None:
    refund = {"mchid": MCH_ID, "out_trade_no": "P1", "transaction_id": "4200000001",
              "out_refund_no": "P1R1", "refund_id": "50300001", "refund_status": "SUCCESS",
              "amount": {"total": 3000, "refund": 1000, "payer_total": 3000,
                         "payer_refund": 1000}}  # fmt: skip
    for event, succeeded in (("REFUND.SUCCESS", True), ("REFUND.ABNORMAL", False),
                             ("REFUND.CLOSED", False)):  # fmt: skip
        body = FAKE.notification(refund, event=event)
        notice = PROVIDER.verify(body, {k.lower(): v for k, v in FAKE.signed_headers(body).items()})
        assert notice == RefundNotice("P1", "", ("P1R1", "50300001"), 1000, succeeded=succeeded)


@given(st.binary(max_size=300), st.dictionaries(st.sampled_from(
    ["wechatpay-serial", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature"]),
    st.text(max_size=40)))  # fmt: skip
def test_any_bytes_and_headers_are_not_verified(body: bytes, headers: dict[str, str]) -> None:
    try:
        PROVIDER.verify(body, headers)
    except NotVerified:
        return
    raise AssertionError("believed")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(st.dictionaries(st.sampled_from(
    ["appid", "mchid", "out_trade_no", "transaction_id", "trade_state", "amount",
     "out_refund_no", "refund_id"]), json_values),
    st.sampled_from(["TRANSACTION.SUCCESS", "REFUND.SUCCESS", "REFUND.ABNORMAL", ""]))  # fmt: skip
def test_any_signed_and_encrypted_transaction_is_a_notice_or_not_verified(
    transaction: dict[str, object], event: str
) -> None:
    """Even a notification WeChat itself signed cannot crash the parser with odd contents."""
    body = FAKE.notification(transaction, event=event)  # type: ignore[arg-type]
    headers = {k.lower(): v for k, v in FAKE.signed_headers(body).items()}
    try:
        notice = PROVIDER.verify(body, headers)
    except NotVerified:
        return
    if isinstance(notice, RefundNotice):
        assert 0 < len(notice.payid) <= 32 and 0 < notice.money_fen < 10**12
        assert notice.refund_nos and all(0 < len(n) <= 64 for n in notice.refund_nos)
        return
    assert len(notice.payid) <= 32 and 0 <= notice.money_fen < 10**12
    if notice.event == "paid":
        assert notice.payid and 0 < len(notice.trade_no) <= 64 and notice.money_fen > 0


@given(st.binary(max_size=200), st.text(max_size=20))
def test_encryption_round_trips_and_any_change_is_refused(plain: bytes, associated: str) -> None:
    nonce = secrets.token_hex(6)
    sealed = encrypt(API_V3_KEY, plain, nonce, associated)
    resource = {"algorithm": "AEAD_AES_256_GCM", "ciphertext": sealed, "nonce": nonce,
                "associated_data": associated}  # fmt: skip
    assert decrypt(API_V3_KEY, resource) == plain
    changed = json.loads(json.dumps(resource))
    changed["associated_data"] = associated + "x"
    try:
        decrypt(API_V3_KEY, changed)
    except Exception as exc:
        assert type(exc).__name__ == "BadSignature"
    else:
        raise AssertionError("a changed associated_data decrypted")
