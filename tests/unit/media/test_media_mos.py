import pytest

from lwork.media.relay.mos import (
    AMR_NB_12_2,
    MODEL_NAME,
    estimate_mos,
    mos_from_r,
    r_factor,
    rating,
)


def test_clean_amr_call_by_hand() -> None:
    # delay = 0 / 2 + 2 * 0 + 20 ms frame -> Id = 0.48; Ie = 5 -> R = 87.72
    assert r_factor(20.0, 0.0, AMR_NB_12_2) == pytest.approx(87.72)
    assert estimate_mos(None, 0.0, 0.0) == pytest.approx(4.279, abs=0.001)


def test_five_percent_loss_by_hand() -> None:
    # Ie,eff = 5 + 90 * 5 / (5 + 10) = 35 -> R = 57.72 -> MOS ~ 2.98
    assert estimate_mos(None, 0.0, 0.05) == pytest.approx(2.981, abs=0.001)


def test_mos_decreases_with_each_impairment() -> None:
    base = estimate_mos(20.0, 2.0, 0.0)
    assert estimate_mos(400.0, 2.0, 0.0) < base
    assert estimate_mos(20.0, 40.0, 0.0) < base
    assert estimate_mos(20.0, 2.0, 0.02) < base


def test_mos_range_is_clamped() -> None:
    assert mos_from_r(-10) == 1.0
    assert mos_from_r(120) == 4.5
    assert 1.0 <= estimate_mos(5000.0, 500.0, 1.0) <= 4.5


def test_rating_labels_and_model_name() -> None:
    assert rating(4.3) == "excellent"
    assert rating(2.0) == "bad"
    assert "G.107" in MODEL_NAME
