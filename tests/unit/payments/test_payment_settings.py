"""The product catalogue: settings validation and how get_payid finds a product."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from lwork.payments.products import Catalogue
from lwork.settings import Settings


def test_defaults_sell_coin_packs_to_common_and_minutes_to_dth() -> None:
    catalogue = Catalogue(Settings().billing.products)
    pack = catalogue.find("common", None, Decimal("30"), Decimal("300"))
    assert pack is not None and (pack.id, pack.money_fen, pack.coins_cents) == (
        "coins_300",
        3000,
        30000,
    )
    package = catalogue.find("dth", "minutes_300x3", None, None)
    assert package is not None and (package.minutes, package.coins_cents) == (900, 0)
    # the same pair in another group, an unknown price, another group's product id
    assert catalogue.find("dth", None, Decimal("30"), Decimal("300")) is None
    assert catalogue.find("common", None, Decimal("30"), Decimal("3000")) is None
    assert catalogue.find("common", "minutes_100x1", None, None) is None


def test_products_read_from_strings_and_floats_exactly() -> None:
    settings = Settings(billing={"products": [
        {"id": "p1", "money": "0.10", "coins": 1},
        {"id": "p2", "money": 0.3, "coins": "2.5"},
    ]})  # fmt: skip
    catalogue = Catalogue(settings.billing.products)
    assert [p.money_fen for p in catalogue.products] == [10, 30]
    assert catalogue.find("common", None, Decimal("0.3"), Decimal("2.50")) is not None


@pytest.mark.parametrize(
    "product",
    [
        {"id": "x", "money": "1.00"},  # neither coins nor minutes
        {"id": "x", "money": "1.00", "coins": 1, "minutes": 5},  # both
        {"id": "x", "money": "1.001", "coins": 1},  # three decimals
        {"id": "x", "money": "0", "coins": 1},
        {"id": "x y", "money": "1", "coins": 1},
    ],
)
def test_bad_products_are_refused(product: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(billing={"products": [product]})


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        Settings(billing={"products": [{"id": "a", "money": 1, "coins": 1}] * 2})


def test_production_refuses_the_test_provider() -> None:
    from lwork.settings.production import production_problems

    on = {"test": {"enabled": True, "secret": "s" * 32}}
    problems = production_problems(Settings(env="production", payments=on))
    assert any("payments.test.enabled" in p for p in problems)
    allowed = {"test": {**on["test"], "allow_in_production": True}}
    problems = production_problems(Settings(env="production", payments=allowed))
    assert not any("payments.test" in p for p in problems)
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(payments={"test": {"enabled": True, "secret": "short"}})


def test_alipay_enabled_without_its_keys_is_refused() -> None:
    with pytest.raises(ValidationError, match="app_private_key"):
        Settings(payments={"alipay": {"enabled": True, "app_id": "1", "notify_url": "https://x",
                                      "alipay_public_key": "k"}})  # fmt: skip
