"""Which SMS provider the settings build, and the clear refusals of incomplete settings."""

from __future__ import annotations

import httpx
import pytest

from lwork.accounts.setup import sms_provider
from lwork.accounts.sms_aliyun import AliyunSmsProvider
from lwork.accounts.sms_failover import FailoverSmsProvider
from lwork.accounts.sms_tencent import TencentSmsProvider
from lwork.settings import SmsSettings

ALIYUN = {"access_key_id": "id", "access_key_secret": "aliyun-secret", "sign_name": "s",
          "template_code": "SMS_1"}  # fmt: skip
TENCENT = {"secret_id": "id", "secret_key": "tencent-secret", "sdk_app_id": "1400",
           "sign_name": "s", "template_id": "1"}  # fmt: skip


def test_each_provider_and_the_failover_pair() -> None:
    client = httpx.AsyncClient()
    settings = SmsSettings(provider="aliyun", aliyun=ALIYUN, tencent=TENCENT)  # type: ignore[arg-type]
    assert isinstance(sms_provider(settings, client), AliyunSmsProvider)
    settings = SmsSettings(provider="tencent", tencent=TENCENT)  # type: ignore[arg-type]
    assert isinstance(sms_provider(settings, client), TencentSmsProvider)
    settings = SmsSettings(provider="aliyun", fallback="tencent", aliyun=ALIYUN, tencent=TENCENT)  # type: ignore[arg-type]
    assert isinstance(sms_provider(settings, client), FailoverSmsProvider)


def test_incomplete_vendor_settings_are_refused_naming_what_is_missing() -> None:
    client = httpx.AsyncClient()
    with pytest.raises(ValueError, match="sms.aliyun needs access_key_id, access_key_secret"):
        sms_provider(SmsSettings(provider="aliyun"), client)
    with pytest.raises(ValueError, match="sms.tencent needs .*sdk_app_id"):
        sms_provider(SmsSettings(provider="aliyun", fallback="tencent", aliyun=ALIYUN), client)  # type: ignore[arg-type]


def test_vendor_secrets_do_not_show_in_the_settings_dump() -> None:
    settings = SmsSettings(provider="aliyun", aliyun=ALIYUN, tencent=TENCENT)  # type: ignore[arg-type]
    shown = repr(settings) + settings.model_dump_json()
    assert "aliyun-secret" not in shown and "tencent-secret" not in shown
