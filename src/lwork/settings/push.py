"""Settings of the push channel and the third-party push providers (Baidu, FCM, APNs, and
the Chinese phone makers' own services)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from pydantic import Field, SecretStr, model_validator

from lwork.settings.sections import Section


class RetrySettings(Section):
    max_attempts: int = Field(4, ge=1)
    """Attempts per push in total, the first included."""
    base_delay_s: float = Field(0.5, ge=0)
    """Backoff before the first retry; doubles for each further retry."""
    max_delay_s: float = Field(8.0, ge=0)
    """Cap on the computed backoff."""
    max_retry_after_s: float = Field(60.0, ge=0)
    """A provider asking to wait longer than this ends the retries (a late call push is useless)."""
    attempt_timeout_s: float = Field(20.0, gt=0)
    """Hard bound on one attempt, token exchange included."""


class BaiduSettings(Section):
    enabled: bool = False
    """Wake Android apps through Baidu Cloud Push (channel ids from baidu_push_register)."""
    api_key: str = ""
    """The app's API key."""
    secret_key: SecretStr = SecretStr("")
    """The app's secret key; used only to sign requests."""
    base_url: str = "https://api.tuisong.baidu.com/rest/3.0"
    """REST API v3 base URL."""
    device_type: int = 3
    """3 = Android, 4 = iOS."""
    deploy_status: int = 2
    """iOS only: 1 = development, 2 = production."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(64, ge=1)
    """Concurrent requests."""
    max_queued: int = Field(1024, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class FcmSettings(Section):
    enabled: bool = False
    """Wake Android apps through Firebase Cloud Messaging (HTTP v1)."""
    service_account_file: Path | None = None
    """The Google service-account JSON key file."""
    project_id: str | None = None
    """Defaults to the service account's project."""
    base_url: str = "https://fcm.googleapis.com"
    """FCM API base URL."""
    token_uri: str | None = None
    """OAuth2 token endpoint; defaults to the service account's."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(100, ge=1)
    """Concurrent requests."""
    max_queued: int = Field(1000, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class ApnsSettings(Section):
    enabled: bool = False
    """Wake iOS apps through APNs (token-based auth)."""
    team_id: str = ""
    """10-character Team ID."""
    key_id: str = ""
    """Key ID of the .p8 signing key."""
    private_key_file: Path | None = None
    """The .p8 signing key."""
    bundle_id: str = ""
    """The app's bundle id (apns-topic); VoIP pushes use <bundle_id>.voip."""
    base_url: str = "https://api.push.apple.com"
    """Production; the sandbox is https://api.sandbox.push.apple.com."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(100, ge=1)
    """Concurrent streams."""
    max_queued: int = Field(1000, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class VendorPushSettings(Section):
    """What every Chinese phone maker's push section has: its switch, its bounds, and the
    credentials it cannot run without (checked when enabled, so a half-filled section stops
    the server at start-up instead of failing every call push)."""

    vendor: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    enabled: bool = False
    """Wake phones registered with this vendor's ``provider`` value through its push service."""
    base_url: str = ""
    """The vendor's push API base URL."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(64, ge=1)
    """Concurrent requests."""
    max_queued: int = Field(1024, ge=0)
    """Sends waiting for a slot before new ones are refused."""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        if self.enabled:
            missing = [name for name in self.required if not _given(getattr(self, name))]
            if missing:
                raise ValueError(f"push.{self.vendor} is enabled without " + ", ".join(missing))
        return self


def _given(value: object) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


class HuaweiSettings(VendorPushSettings):
    """Huawei (HMS) phones through Huawei Push Kit (``provider = "huawei"``)."""

    vendor = "huawei"
    required = ("app_id", "app_secret")
    app_id: str = ""
    """The app's APP ID in AppGallery Connect (also the OAuth client id)."""
    app_secret: SecretStr = SecretStr("")
    """The app's APP SECRET (the OAuth client secret; never logged)."""
    token_url: str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
    """OAuth 2.0 token endpoint."""
    base_url: str = "https://push-api.cloud.huawei.com"
    """Push Kit API base URL."""


class XiaomiSettings(VendorPushSettings):
    """Xiaomi phones through MiPush (``provider = "xiaomi"``, pass-through messages)."""

    vendor = "xiaomi"
    required = ("app_secret", "package_name")
    app_secret: SecretStr = SecretStr("")
    """The app's AppSecret (sent as ``Authorization: key=…``; never logged)."""
    package_name: str = ""
    """The Android package name the registration ids belong to."""
    base_url: str = "https://api.xmpush.xiaomi.com"
    """MiPush server API base URL."""


class OppoSettings(VendorPushSettings):
    """OPPO / OnePlus / realme phones through OPPO Push (``provider = "oppo"``)."""

    vendor = "oppo"
    required = ("app_key", "master_secret")
    app_key: str = ""
    """The app's AppKey."""
    master_secret: SecretStr = SecretStr("")
    """The app's MasterSecret (only hashed into the auth signature; never logged)."""
    channel_id: str = "lwork_calls"
    """The notification channel the app creates for incoming calls (OPPO requires one)."""
    base_url: str = "https://api.push.oppomobile.com"
    """OPPO Push server API base URL."""


class VivoSettings(VendorPushSettings):
    """vivo / iQOO phones through vivo Push (``provider = "vivo"``)."""

    vendor = "vivo"
    required = ("app_id", "app_key", "app_secret")
    app_id: str = ""
    """The app's AppID."""
    app_key: str = ""
    """The app's AppKey."""
    app_secret: SecretStr = SecretStr("")
    """The app's AppSecret (only hashed into the auth signature; never logged)."""
    base_url: str = "https://api-push.vivo.com.cn"
    """vivo Push server API base URL."""


class HonorSettings(VendorPushSettings):
    """Honor phones through Honor Push (``provider = "honor"``, data messages)."""

    vendor = "honor"
    required = ("app_id", "client_id", "client_secret")
    app_id: str = ""
    """The app's APP ID in the Honor developer console."""
    client_id: str = ""
    """The OAuth client id of the app."""
    client_secret: SecretStr = SecretStr("")
    """The OAuth client secret (never logged)."""
    token_url: str = "https://iam.developer.honor.com/auth/token"
    """OAuth 2.0 token endpoint."""
    base_url: str = "https://push-api.cloud.honor.com"
    """Honor Push API base URL."""


class JPushSettings(VendorPushSettings):
    """Phones through the JPush aggregator (``provider = "jpush"``, registration ids)."""

    vendor = "jpush"
    required = ("app_key", "master_secret")
    app_key: str = ""
    """The app's AppKey."""
    master_secret: SecretStr = SecretStr("")
    """The app's Master Secret (HTTP Basic password; never logged)."""
    base_url: str = "https://api.jpush.cn"
    """JPush API base URL."""


class PushSettings(Section):
    hold_s: float = Field(60.0, gt=0)
    """How long a long poll is held before answering shake_hand (seconds): at most this."""
    hold_spread: float = Field(0.1, ge=0, lt=1)
    """Each poll is held for a time drawn between ``(1 - hold_spread) * hold_s`` and ``hold_s``.
    Phones that polled together (every phone of a node, after its restart) would otherwise
    re-poll together every ``hold_s`` for as long as they stay connected, one burst of
    requests each time; 0 holds every poll exactly ``hold_s``."""
    invite_ttl_s: float = Field(90.0, gt=0)
    """A call invitation left undelivered expires after this long (seconds)."""
    mailbox_size: int = Field(100, ge=1)
    """Events kept per device; the oldest are dropped (and counted) beyond it."""
    account_event_ttl_s: float = Field(86400.0, gt=0)
    """How long an account event (not a call) waits in a mailbox (seconds)."""
    retry: RetrySettings = RetrySettings()
    baidu: BaiduSettings = BaiduSettings()
    fcm: FcmSettings = FcmSettings()
    apns: ApnsSettings = ApnsSettings()
    huawei: HuaweiSettings = HuaweiSettings()
    xiaomi: XiaomiSettings = XiaomiSettings()
    oppo: OppoSettings = OppoSettings()
    vivo: VivoSettings = VivoSettings()
    honor: HonorSettings = HonorSettings()
    jpush: JPushSettings = JPushSettings()
