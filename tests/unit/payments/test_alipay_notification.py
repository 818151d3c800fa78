"""An Alipay notification's parser: a genuine payment or refund notice is read exactly, and any
other form (any bytes; any fields, even correctly signed) is a notice within bounds or
NotVerified, never another error; a refund notice never claims more than the payment."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwork.payments.alipay import AlipayProvider
from lwork.payments.alipay_form import form_fields
from lwork.payments.provider import Notice, NotVerified, RefundNotice
from lwork.settings.payments import AlipaySettings

from fakes.alipay import FakeAlipay, bare_public, new_key, private_pem

APP_ID, SELLER = "2021000000000001", "2088000000000001"
APP_KEY = new_key()
FAKE = FakeAlipay(APP_ID, SELLER, APP_KEY.public_key())
PROVIDER = AlipayProvider(
    AlipaySettings(
        enabled=True, app_id=APP_ID, seller_id=SELLER,
        app_private_key=private_pem(APP_KEY),  # type: ignore[arg-type]
        alipay_public_key=bare_public(FAKE.key),
        notify_url="https://pay.example.com/lwork/pay/notify/alipay",
    )
)  # fmt: skip


def verify(params: dict[str, str]) -> Notice | RefundNotice:
    return PROVIDER.verify(urlencode(params).encode(), {})


def test_genuine_payment_and_refund_notices_are_read_exactly() -> None:
    paid = verify(FAKE.notification("P1", "30.00", trade_no="T1"))
    assert paid == Notice("P1", "T1", 3000, "paid")
    second = FAKE.notification("P1", "30.00", trade_no="T1", refund_fee="15.00",
                               out_biz_no="console-b")  # fmt: skip
    assert verify(second) == RefundNotice("P1", "T1", ("console-b",), 1500, cumulative=True)
    # refund_fee 0.00 refunds nothing: the payment's notification, not a refusal
    zero = FAKE.notification("P1", "30.00", trade_no="T1", refund_fee="0.00")
    assert verify(zero) == Notice("P1", "T1", 3000, "paid")
    # Without out_biz_no (a console refund may carry none), named by the trade and refund_fee:
    # each further refund of the trade has a name of its own, each repeat the same.
    for refunded, name in (("10.00", "T1/1000"), ("15.00", "T1/1500"), ("15.00", "T1/1500")):
        unnumbered = FAKE.notification("P1", "30.00", trade_no="T1", refund_fee=refunded)
        assert verify(unnumbered) == RefundNotice(
            "P1", "T1", (name,), int(float(refunded) * 100), cumulative=True
        )


AMOUNTS = st.one_of(
    st.decimals(min_value=-1, max_value=10**11, places=2, allow_nan=False).map(str),
    st.text(max_size=12),
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "out_trade_no": st.text(max_size=40), "trade_no": st.text(max_size=70),
        "total_amount": AMOUNTS, "refund_fee": AMOUNTS, "out_biz_no": st.text(max_size=80),
        "trade_status": st.sampled_from(["TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED",
                                         "WAIT_BUYER_PAY", ""]),
        "app_id": st.sampled_from([APP_ID, "2021999"]),
    },
)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(FIELDS)
def test_any_signed_form_is_a_bounded_notice_or_not_verified(fields: dict[str, str]) -> None:
    """Even a form Alipay itself signed cannot crash the parser or over-claim a refund."""
    base = {"out_trade_no": "P1", "trade_no": "T1", "total_amount": "30.00"}
    params = FAKE.sign({**FAKE.notification("P1", "30.00"), **base, **fields})
    try:
        notice = verify(params)
    except NotVerified:
        return
    assert 0 < len(notice.payid) <= 32
    if isinstance(notice, RefundNotice):
        assert notice.cumulative and 0 < notice.money_fen < 10**12
        total = round(float(params["total_amount"]) * 100)
        assert notice.money_fen <= total
        assert all(0 < len(number) <= 64 for number in notice.refund_nos)
    else:
        assert 0 < notice.money_fen < 10**12 and 0 < len(notice.trade_no) <= 64


def test_a_sign_that_is_not_base64_is_not_verified() -> None:
    """Characters that are not ASCII, or not Base64, or padding in the middle: the form's own
    refusal (400, ``failure``), never another error (which answered 503)."""
    genuine = FAKE.notification("P1", "30.00")
    for sign in ("签名", genuine["sign"] + "中", "QQ==QQ==", "=" + genuine["sign"], ""):
        try:
            verify({**genuine, "sign": sign})
        except NotVerified:
            continue
        raise AssertionError(f"believed with sign {sign!r}")


@given(st.binary(max_size=300))
def test_any_bytes_are_not_verified(body: bytes) -> None:
    try:
        PROVIDER.verify(body, {})
    except NotVerified:
        return
    raise AssertionError("believed")


FORM_TEXT = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=40)), max_size=8).map(
    urlencode
)
FORM_BYTES = st.one_of(
    FORM_TEXT.map(str.encode),
    # with what the fast unescaping hands to unquote (a backslash, broken escapes) or must
    # read as it does (escapes of a broken UTF-8 sequence next to raw characters)
    st.lists(st.sampled_from(["a", "=", "&", "+", "%", "%2", "%41", "%e4%b8%ad", "%ff", "中", " ",
                              "\\", "\\x41", "%5C", "%5cx41", "%e4%b8", "\xad", "%2B", "%3D"]),
             max_size=12).map(lambda parts: "".join(parts).encode()),
    st.binary(max_size=40),
)  # fmt: skip


@settings(max_examples=400)
@given(FORM_BYTES)
def test_the_form_reads_as_parse_qsl_reads_it_strictly(body: bytes) -> None:
    """``form_fields`` is a faster parse_qsl(strict_parsing, keep_blank_values): the same
    fields, or an error where it errs."""
    try:
        expected: dict[str, str] | type[Exception] = dict(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        )
    except (UnicodeDecodeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: dict[str, str] | type[Exception] = form_fields(body)
    except (UnicodeDecodeError, ValueError) as exc:
        got = type(exc)
    assert got == expected
