"""The console's second factor and change forms, pure: RFC 4226/6238 known answers, the code
window, sealed secrets, the pending sign-in token, and every form parser under hypothesis."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.admin import action_forms
from lwork.admin.i18n import CATALOGUE
from lwork.admin.second_factor import PENDING_TTL_S, PendingSignIns, SecretBox
from lwork.admin.totp import (
    base32,
    hotp,
    matching_step,
    new_secret,
    otpauth_uri,
    parse_code,
    totp,
)

RFC_KEY = b"12345678901234567890"


def test_rfc4226_appendix_d() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]  # fmt: skip
    assert [hotp(RFC_KEY, counter) for counter in range(10)] == expected


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
     (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")],
)  # fmt: skip
def test_rfc6238_appendix_b_sha1(unix_time: int, code: str) -> None:
    assert totp(RFC_KEY, unix_time, digits=8) == code


def test_a_code_is_good_one_step_either_side_and_no_further() -> None:
    now = 1_800_000_015.0
    step = int(now // 30)
    for offset in (-1, 0, 1):
        assert matching_step(RFC_KEY, totp(RFC_KEY, now + 30 * offset), now) == step + offset
    for offset in (-3, -2, 2, 3):
        assert matching_step(RFC_KEY, totp(RFC_KEY, now + 30 * offset), now) is None
    assert matching_step(b"another key 12345678", totp(RFC_KEY, now), now) is None


def test_the_uri_an_authenticator_reads() -> None:
    secret = new_secret()
    uri = urlsplit(otpauth_uri(secret, "alice", "lwork"))
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/lwork:alice")
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert query == {"secret": base32(secret), "issuer": "lwork", "algorithm": "SHA1",
                     "digits": "6", "period": "30"}  # fmt: skip
    padded = query["secret"] + "=" * (-len(query["secret"]) % 8)
    assert base64.b32decode(padded) == secret and len(secret) == 20


def test_sealed_secrets_open_only_for_their_operator_and_key() -> None:
    box = SecretBox(b"k" * 32)
    secret = new_secret()
    sealed = box.seal(secret, "alice")
    assert box.open(sealed, "alice") == secret
    assert secret not in base64.urlsafe_b64decode(sealed) and base32(secret) not in sealed
    assert box.seal(secret, "alice") != sealed  # a fresh nonce each time
    for opened_as, other_box in (("bob", box), ("alice", SecretBox(b"j" * 32))):
        with pytest.raises(ValueError):
            other_box.open(sealed, opened_as)
    for garbage in ("", "%%%", "AAAA", sealed[:-4], "é"):
        with pytest.raises(ValueError):
            box.open(garbage, "alice")


def test_a_pending_sign_in_lasts_its_time_and_is_ours() -> None:
    pending = PendingSignIns(b"k" * 32)
    token = pending.issue("alice", 1000.0)
    assert pending.name_of(token, 1000.0) == "alice"
    assert pending.name_of(token, 1000.0 + PENDING_TTL_S - 1) == "alice"
    assert pending.name_of(token, 1000.0 + PENDING_TTL_S) is None
    assert PendingSignIns(b"j" * 32).name_of(token, 1000.0) is None
    name, expires, mac = token.split("~")
    assert pending.name_of(f"bob~{expires}~{mac}", 1000.0) is None  # another name
    assert pending.name_of(f"{name}~{int(expires) + 999}~{mac}", 1000.0) is None  # longer life


@settings(deadline=None)
@given(st.text(max_size=300), st.floats(allow_nan=False, allow_infinity=False))
def test_any_pending_cookie_is_a_name_or_nothing(token: str, now: float) -> None:
    found = PendingSignIns(b"k" * 32).name_of(token, now)
    assert found is None  # a token we never issued names nobody


@settings(deadline=None)
@given(st.text(max_size=40))
def test_any_typed_code_is_six_digits_or_nothing(raw: str) -> None:
    code = parse_code(raw)
    assert code is None or (len(code) == 6 and code.isascii() and code.isdigit())


def test_codes_as_people_type_them() -> None:
    assert parse_code(" 123 456 ") == "123456" and parse_code("123-456") == "123456"
    for bad in ("12345", "1234567", "12345a", "１２３４５６", "", "123\n456"):
        assert parse_code(bad) is None


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["coins", "minutes", "ref", "note", "x"]),
                       st.text(max_size=80)))  # fmt: skip
def test_any_credit_form_is_a_credit_or_a_named_refusal(form: dict[str, str]) -> None:
    try:
        credit = action_forms.credit(form)
    except action_forms.FormError as exc:
        assert exc.field in ("coins", "minutes", "ref", "note")
        return
    assert credit.coins_cents > 0 or credit.minutes > 0
    assert 0 <= credit.coins_cents <= action_forms.MAX_COINS * 100
    assert 0 <= credit.minutes <= action_forms.MAX_MINUTES and credit.ref


def test_credit_forms() -> None:
    assert action_forms.credit({"coins": "12.5", "ref": "T-1"}).coins_cents == 1250
    assert action_forms.credit({"minutes": "30", "ref": "T-1", "note": " x "}).note == "x"
    for form, field in (({"coins": "1.001", "ref": "r"}, "coins"),
                        ({"coins": "-1", "ref": "r"}, "coins"),
                        ({"coins": "NaN", "ref": "r"}, "coins"),
                        ({"coins": "1e9", "ref": "r"}, "coins"),
                        ({"minutes": "1.5", "ref": "r"}, "minutes"),
                        ({"ref": "r"}, "coins"), ({"coins": "1", "ref": "a b"}, "ref"),
                        ({"coins": "1", "ref": "r", "note": "\x1b[31m"}, "note")):  # fmt: skip
        with pytest.raises(action_forms.FormError) as refused:
            action_forms.credit(form)
        assert refused.value.field == field, form


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["payid", "money", "reason"]), st.text(max_size=250)))
def test_any_refund_form_is_a_refund_or_a_named_refusal(form: dict[str, str]) -> None:
    try:
        refund = action_forms.refund(form)
    except action_forms.FormError as exc:
        assert exc.field in ("payid", "money", "reason")
        return
    assert refund.payid and refund.reason and (refund.money_fen is None or refund.money_fen > 0)


FIELDS = ["kind", "version_no", "version_path", "version_info", "i_version_no",
          "i_version_path", "i_version_info"]  # fmt: skip


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(FIELDS), st.one_of(st.text(max_size=60), st.sampled_from(["default"]))
    )
)
def test_any_versions_form_is_versions_or_a_named_refusal(form: dict[str, str]) -> None:
    try:
        versions = action_forms.versions(form)
    except action_forms.FormError as exc:
        assert exc.field in FIELDS
        return
    assert versions.kind in ("default", "dth", "common")
    for path in (versions.version_path, versions.i_version_path):
        assert path == "" or path.startswith(("http://", "https://"))


@settings(deadline=None)
@given(st.text(max_size=40))
def test_any_phone_field_is_digits_or_a_named_refusal(raw: str) -> None:
    try:
        number = action_forms.phone({"phone": raw})
    except action_forms.FormError as exc:
        assert exc.field == "phone"
        return
    assert number.lstrip("+").isascii() and number.lstrip("+").isdigit()


def test_every_message_built_at_run_time_is_in_the_catalogue() -> None:
    from lwork.admin.accounts import NOTICES
    from lwork.appversions import KINDS

    keys = {f"done_{n}" for n in NOTICES} | {f"versions_kind_{k}" for k in KINDS}
    keys |= {"activate", "deactivate", "not_provisioned", "refused_by_service", "bad_input",
             "too_many", "refund_refused", "code_expired", "bad_code",
             "reset_code_common_only"}  # fmt: skip
    assert keys <= set(CATALOGUE), keys - set(CATALOGUE)
