"""The product catalogue (``billing.products``) and the payment providers' settings
(``payments``): what an order costs and gives, and who may take the money (CONTRACT §8)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

from lwork.settings.base import Section
from lwork.settings.pem import check_private_key, check_public_key, read_pem

ProductId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class ProductSettings(Section):
    """One thing an app can buy: a coin pack or a minute package."""

    id: ProductId
    """What the app names in ``get_payid``'s ``product_id`` (and the App Store product id,
    unless ``apple_product_id`` names another)."""
    apple_product_id: ProductId | None = None
    """The product's id in App Store Connect, when it is not ``id``: ``get_payid`` answers it
    as ``apple_product_id`` and a StoreKit transaction for the order must name it."""
    group: str = "common"
    """The account group that may buy it (``common``: coins; ``dth``: package minutes)."""
    money: Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)]
    """Its price in yuan, at most two decimals (write it as a string, ``"30.00"``)."""
    coins: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)] | None = None
    """Coins it credits (a coin pack)."""
    minutes: int | None = Field(None, gt=0)
    """Package minutes it credits per period (a minute package)."""
    period_days: int = Field(30, gt=0)
    """Length of one period of a minute package, in days: the first starts when the order is
    paid, and minutes left at a period's end expire with it."""
    periods: int = Field(1, gt=0)
    """How many periods a minute package covers."""

    @field_validator("money", "coins", mode="before")
    @classmethod
    def _no_binary_floats(cls, value: object) -> object:
        # 0.1 as a binary float is not 0.1: read a float by its shortest decimal spelling.
        return str(value) if isinstance(value, float) else value

    @model_validator(mode="after")
    def _coins_or_minutes(self) -> ProductSettings:
        if (self.coins is None) == (self.minutes is None):
            raise ValueError(f"product {self.id}: give either coins or minutes")
        return self


def default_products() -> list[ProductSettings]:
    """The catalogue of a fresh install: three coin packs and two minute packages."""
    coins = [("coins_100", "10.00", "100"), ("coins_300", "30.00", "300"),
             ("coins_1000", "98.00", "1000")]  # fmt: skip
    minutes = [("minutes_100x1", "20.00", 100, 1), ("minutes_300x3", "150.00", 300, 3)]
    return [
        *(ProductSettings(id=i, money=Decimal(m), coins=Decimal(c)) for i, m, c in coins),
        *(
            ProductSettings(id=i, group="dth", money=Decimal(m), minutes=n, periods=p)
            for i, m, n, p in minutes
        ),
    ]


def unique_ids(products: list[ProductSettings]) -> list[ProductSettings]:
    """Product ids, and the App Store ids they sell as, each name one product."""
    seen: set[str] = set()
    for product in products:
        if product.id in seen:
            raise ValueError(f"product id {product.id} appears twice")
        seen.add(product.id)
    apple: set[str] = set()
    for product in products:
        store_id = product.apple_product_id or product.id
        if store_id in apple:
            raise ValueError(f"App Store product id {store_id} names two products")
        apple.add(store_id)
    return products


class TestPaySettings(Section):
    """The ``test`` provider: notifications signed with a shared secret, for staging."""

    __test__ = False  # not a pytest test class, whatever its name

    enabled: bool = False
    """Accept ``pay_type = "test"`` orders and ``POST /lwork/pay/notify/test``. Anyone who
    knows ``secret`` can credit any order: never on a service taking real money."""
    secret: SecretStr = SecretStr("")
    """Key of the HMAC-SHA256 in ``X-Lwork-Signature`` (hex of the raw body's MAC)."""
    allow_in_production: bool = False
    """``env = "production"`` refuses an enabled test provider unless this is set too (a
    staging service run with production settings)."""

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> TestPaySettings:
        if self.enabled and len(self.secret.get_secret_value()) < 16:
            raise ValueError("payments.test.secret: at least 16 characters when enabled")
        return self


class AlipaySettings(Section):
    """Alipay App Pay (``alipay.trade.app.pay``): orders signed RSA2 by the server."""

    enabled: bool = False
    """Offer ``pay_type = "alipay"`` and accept ``POST /lwork/pay/notify/alipay`` (and the
    original's ``/lwork/mobile/paytest``)."""
    app_id: str = ""
    """The application's id on the Alipay open platform."""
    seller_id: str = ""
    """The merchant's Alipay user id (2088…); a notification naming another seller is flagged.
    Empty: not checked."""
    app_private_key: SecretStr = SecretStr("")
    """The application's RSA private key (PEM, PKCS#1 or PKCS#8) that signs orders; never sent
    to an app."""
    alipay_public_key: str = ""
    """Alipay's RSA public key (PEM, or the bare Base64 the console shows) that notifications
    are verified with."""
    notify_url: str = ""
    """Where Alipay posts notifications: this service's public
    ``https://…/lwork/pay/notify/alipay``."""
    gateway_url: str = "https://openapi.alipay.com/gateway.do"
    """Alipay's open-platform gateway, asked by reconciliation (``alipay.trade.query``) and
    refunds (``alipay.trade.refund``); the sandbox is
    ``https://openapi-sandbox.dl.alipaydev.com/gateway.do``."""
    timeout_s: float = Field(10.0, gt=0)
    """How long one gateway call may take before it counts as unavailable (seconds)."""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> AlipaySettings:
        if self.enabled:
            missing = [name for name in ("app_id", "alipay_public_key", "notify_url")
                       if not getattr(self, name)]  # fmt: skip
            if not self.app_private_key.get_secret_value():
                missing.append("app_private_key")
            if missing:
                raise ValueError("payments.alipay is enabled without " + ", ".join(missing))
        return self


class WechatSettings(Section):
    """WeChat Pay API v3, App payments (``/v3/pay/transactions/app``)."""

    enabled: bool = False
    """Offer ``pay_type = "wechat"`` and accept ``POST /lwork/pay/notify/wechat``."""
    app_id: str = ""
    """The mobile application's AppID on the WeChat open platform (``wx…``)."""
    mch_id: str = ""
    """The merchant id (``mchid``); a notification naming another merchant or app is flagged."""
    merchant_serial_no: str = ""
    """Serial number of the merchant's API certificate, named in every signed request."""
    merchant_private_key: SecretStr = SecretStr("")
    """The merchant's API private key (PEM) that signs requests and the app's parameters."""
    merchant_private_key_file: Path | None = None
    """The same key as a file (``apiclient_key.pem`` from the merchant platform), instead of
    ``merchant_private_key``; read at start-up, which refuses a missing file or one that is
    not an unencrypted PEM RSA key."""
    api_v3_key: SecretStr = SecretStr("")
    """The 32-byte API v3 key that notifications' resources are encrypted with."""
    platform_keys: dict[str, str] = {}
    """WeChat Pay's public keys by serial (``Wechatpay-Serial``): the platform certificates'
    keys or the newer ``PUB_KEY_ID_…`` public key, PEM. Replies and notifications signed by
    a serial not listed here are not believed; list the new key before WeChat rotates."""
    platform_key_files: dict[str, Path] = {}
    """WeChat Pay's public keys (``pub_key.pem``) or platform certificates as files, by
    serial, besides ``platform_keys``; read at start-up, which refuses a missing file or one
    that is not a PEM RSA public key or certificate."""
    notify_url: str = ""
    """Where WeChat Pay posts notifications: this service's public
    ``https://…/lwork/pay/notify/wechat``."""
    api_url: str = "https://api.mch.weixin.qq.com"
    """The API v3 host, asked to open orders, by reconciliation and for refunds."""
    timestamp_window_s: int = Field(300, ge=30)
    """A notification or reply signed longer ago (or ahead) than this is refused (seconds)."""
    timeout_s: float = Field(10.0, gt=0)
    """How long one API call may take before it counts as unavailable (seconds)."""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> WechatSettings:
        if not self.enabled:
            return self
        missing = [name for name in ("app_id", "mch_id", "merchant_serial_no", "notify_url")
                   if not getattr(self, name)]  # fmt: skip
        if not self.api_v3_key.get_secret_value():
            missing.append("api_v3_key")
        inline_key = bool(self.merchant_private_key.get_secret_value())
        if not inline_key and self.merchant_private_key_file is None:
            missing.append("merchant_private_key")
        if not self.platform_keys and not self.platform_key_files:
            missing.append("platform_keys")
        if missing:
            raise ValueError("payments.wechat is enabled without " + ", ".join(missing))
        if inline_key and self.merchant_private_key_file is not None:
            raise ValueError("payments.wechat: merchant_private_key or merchant_private_key_file,"
                             " not both")  # fmt: skip
        if len(self.api_v3_key.get_secret_value().encode()) != 32:
            raise ValueError("payments.wechat.api_v3_key must be 32 bytes")
        # Read and parsed now, so that the server does not start without them.
        check_private_key(self._merchant_key_setting(), self.merchant_key_pem())
        for serial, pem in self.platform_pems().items():
            check_public_key(self._platform_setting(serial), pem)
        return self

    def _merchant_key_setting(self) -> str:
        file = self.merchant_private_key_file is not None
        return "payments.wechat.merchant_private_key" + ("_file" if file else "")

    def _platform_setting(self, serial: str) -> str:
        where = "platform_key_files" if serial in self.platform_key_files else "platform_keys"
        return f"payments.wechat.{where}[{serial[:64]}]"

    def merchant_key_pem(self) -> str:
        """The merchant's private key, from the setting or its file."""
        if self.merchant_private_key_file is None:
            return self.merchant_private_key.get_secret_value()
        return read_pem(self._merchant_key_setting(), self.merchant_private_key_file)

    def platform_pems(self) -> dict[str, str]:
        """WeChat Pay's keys by serial, from the setting and the files."""
        files = {serial: read_pem(self._platform_setting(serial), path)
                 for serial, path in self.platform_key_files.items()}  # fmt: skip
        return {**self.platform_keys, **files}


class AppleSettings(Section):
    """The App Store: StoreKit 2 purchases the app posts to ``pay/apple`` and App Store Server
    Notifications V2 (refunds)."""

    enabled: bool = False
    """Offer ``pay_type = "apple"``, ``POST /lwork/mobile/pay/apple`` and
    ``POST /lwork/pay/notify/apple``. The App Store product ids are the catalogue's ids or
    their ``apple_product_id``."""
    bundle_id: str = ""
    """The app's bundle id: a transaction for another app is refused."""
    environment: Literal["Production", "Sandbox"] = "Production"
    """Transactions of the other environment are refused (TestFlight and Xcode buy in
    ``Sandbox``)."""
    root_certificates: list[str] = []
    """PEM root certificates the signed data must chain up to: Apple Root CA - G3
    (https://www.apple.com/certificateauthority/AppleRootCA-G3.cer, converted to PEM)."""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> AppleSettings:
        if self.enabled:
            missing = [name for name in ("bundle_id", "root_certificates")
                       if not getattr(self, name)]  # fmt: skip
            if missing:
                raise ValueError("payments.apple is enabled without " + ", ".join(missing))
        return self


class PaymentSettings(Section):
    order_ttl_s: int = Field(1800, ge=60)
    """An order not paid this long after ``get_payid`` is closed (seconds); the providers are
    told the same deadline."""
    reconcile_after_s: int = Field(600, ge=10)
    """An order still ``created`` this long after ``get_payid`` is asked about at its provider
    (its notification may have been lost) and settled from the answer (seconds)."""
    reconcile_every_s: float = Field(60.0, gt=0)
    """How often the server's reconciliation round runs (seconds)."""
    alipay: AlipaySettings = AlipaySettings()
    wechat: WechatSettings = WechatSettings()
    apple: AppleSettings = AppleSettings()
    test: TestPaySettings = TestPaySettings()
