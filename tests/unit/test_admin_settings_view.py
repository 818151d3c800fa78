"""The settings view's masking, pure: no secret of any kind survives into the rows it shows."""

from __future__ import annotations

from pathlib import Path

from lwork.admin.settings_page import SET, UNSET, rows
from lwork.settings import Settings

SECRETS = {
    "secret_key": "sk-0123456789abcdef0123456789abcdef",
    "database": {"url": "postgresql+asyncpg://lwork:db-Pa55word@db.example:5432/lwork"},
    "bus": {"url": "redis://:redis-Pa55@redis.example:6379/0"},
    "sms": {"provider": "http", "gateway_url": "https://sms.example/send?user=u&apikey=gw-key-1",
            "gateway_auth_header": "Bearer gw-bearer-1",
            "aliyun": {"access_key_id": "LTAI-id-1", "access_key_secret": "ali-secret-1"}},
    "push": {"baidu": {"api_key": "baidu-api-key-1", "secret_key": "baidu-secret-1"}},
    "sip": {"password": "sip-pass-1"},
    "media": {"ng_secret": "ng-secret-1"},
    "metrics": {"token": "metrics-token-1"},
    "payments": {"test": {"secret": "pay-test-secret-1"},
                 "wechat": {"api_v3_key": "wx-v3-key-1", "merchant_private_key": "wx-pem-1"}},
    "boss": {"keys": {"boss1": ["boss-hmac-key-0123456789"]},
             "nmsi_password": "nmsi-pass-1"},
}  # fmt: skip
VALUES = ["sk-0123456789abcdef", "db-Pa55word", "redis-Pa55", "gw-key-1", "gw-bearer-1",
          "ali-secret-1", "LTAI-id-1", "baidu-api-key-1", "baidu-secret-1", "sip-pass-1",
          "ng-secret-1", "metrics-token-1", "pay-test-secret-1", "wx-v3-key-1", "wx-pem-1",
          "boss-hmac-key-0123456789", "nmsi-pass-1"]  # fmt: skip


def test_no_secret_value_is_shown(tmp_path: Path) -> None:
    shown = dict(rows(Settings(data_dir=tmp_path, **SECRETS)))
    everything = "\n".join(f"{k} {v}" for k, v in shown.items())
    for value in VALUES:
        assert value not in everything, value
    assert shown["secret_key"] == SET and shown["metrics.token"] == SET
    assert shown["sms.tencent.secret_key"] == UNSET  # says whether it is set, nothing more
    assert shown["database.url"] == "postgresql+asyncpg://lwork:******@db.example:5432/lwork"
    assert shown["bus.url"] == "redis://:******@redis.example:6379/0"
    assert shown["sms.gateway_url"] == "https://sms.example/send?user=u&apikey=%2A%2A%2A%2A%2A%2A"
    assert shown["boss.keys"] == SET
    # what is not a secret is shown as it is: the operator checks the deployment with it
    assert shown["node"] == "n1" and shown["http.port"] == "8080"
    assert shown["auth.require_token"] == "false" and shown["data_dir"] == str(tmp_path)
    assert '"coins_100"' in shown["billing.products"]
