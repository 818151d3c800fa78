"""A vendor push section switched on without its credentials stops the settings from loading
(naming what is missing), and the server builds one guarded provider per enabled vendor."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from lwork.push.providers import GuardedProvider, PushProvider, RetryPolicy
from lwork.push.setup import _add_vendors
from lwork.settings import PushSettings

COMPLETE = {
    "huawei": {"app_id": "1", "app_secret": "huawei-secret"},
    "xiaomi": {"app_secret": "xiaomi-secret", "package_name": "com.example"},
    "oppo": {"app_key": "k", "master_secret": "oppo-secret"},
    "vivo": {"app_id": "1", "app_key": "k", "app_secret": "vivo-secret"},
    "honor": {"app_id": "1", "client_id": "c", "client_secret": "honor-secret"},
    "jpush": {"app_key": "k", "master_secret": "jpush-secret"},
}


@pytest.mark.parametrize("vendor", sorted(COMPLETE))
def test_an_enabled_vendor_without_its_credentials_is_refused(vendor: str) -> None:
    secret_field = next(name for name, value in COMPLETE[vendor].items() if "secret" in value)
    partial = {k: v for k, v in COMPLETE[vendor].items() if k != secret_field}
    with pytest.raises(ValidationError, match=f"push.{vendor} is enabled without {secret_field}"):
        PushSettings.model_validate({vendor: {"enabled": True, **partial}})
    # Off, the same section is fine: an operator may keep credentials of a vendor unused.
    PushSettings.model_validate({vendor: partial})


def test_each_enabled_vendor_gets_its_guarded_provider_and_hides_its_secret() -> None:
    settings = PushSettings.model_validate(
        {
            vendor: {"enabled": True, "max_in_flight": 3, **fields}
            for vendor, fields in COMPLETE.items()
        }  # fmt: skip
    )
    providers: dict[str, PushProvider] = {}
    _add_vendors(settings, httpx.AsyncClient(), RetryPolicy(), providers)
    assert sorted(providers) == sorted(COMPLETE)
    assert all(isinstance(p, GuardedProvider) for p in providers.values())
    shown = repr(settings) + settings.model_dump_json()
    assert not any(f"{vendor}-secret" in shown for vendor in COMPLETE)
