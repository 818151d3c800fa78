"""Phone numbers as the Chinese SMS vendors want them.

Apps send a mainland mobile as its 11 digits (``13800138000``) and a foreign number with an
international prefix (``0044…`` or ``+44…``). Tencent wants E.164 (``+8613800138000``); Aliyun
wants the digits with the country code and no prefix (``8613800138000``, or the bare 11 digits
for the mainland)."""

from __future__ import annotations

import re

_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
_INTERNATIONAL = re.compile(r"(?:\+|00)([1-9]\d{6,14})")


def e164(phone: str) -> str:
    """``+`` and the country code and number; ValueError for anything else."""
    phone = phone.strip()
    if _MAINLAND_MOBILE.fullmatch(phone):
        return "+86" + phone
    match = _INTERNATIONAL.fullmatch(phone)
    if match is None:
        raise ValueError("not a mainland mobile or an international number")
    return "+" + match.group(1)


def aliyun_number(phone: str) -> str:
    """The number as Aliyun's ``PhoneNumbers`` takes it: 11 digits for the mainland, else the
    country code and number without a prefix."""
    number = e164(phone)[1:]
    if number.startswith("86") and _MAINLAND_MOBILE.fullmatch(number[2:]):
        return number[2:]
    return number
