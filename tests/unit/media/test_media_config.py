import pytest

from lwork.media.relay.config import RelayConfig


def test_config_rejects_unusable_settings() -> None:
    with pytest.raises(ValueError, match="advertised_address"):
        RelayConfig(bind_host="0.0.0.0")
    assert RelayConfig(bind_host="0.0.0.0", advertised_address="203.0.113.1").sdp_address == (
        "203.0.113.1"
    )
    for bad in (
        {"port_min": 5000, "port_max": 4000},
        {"workers": 0},
        {"media_timeout_s": 0},
        {"realtime_priority": -1},
        {"realtime_priority": 100},
    ):
        with pytest.raises(ValueError):
            RelayConfig(**bad)  # type: ignore[arg-type]
