"""``/metrics``: JSON by default, Prometheus text or OpenMetrics when a scraper asks for it."""

from __future__ import annotations

from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from test_push_channel import PHONE, account, poll


def samples(families: Any) -> dict[str, float]:
    return {s.name: s.value for family in families for s in family.samples}


async def test_metrics_in_json_and_in_both_scrape_formats_agree(server_factory: Any) -> None:
    async with server_factory(push={"hold_s": 1.0, "mailbox_size": 3}) as server:
        await account(server)
        for n in range(5):  # two of them overflow the mailbox
            await server.services.push.notify(PHONE, {"event": "e", "n": n})
        await poll(server)
        await check_formats(server)


async def check_formats(server: Any) -> None:
    plain = await server.get("/metrics")
    assert plain.headers["content-type"] == "application/json"
    figures = plain.json()
    assert figures["status"] == "ok" and figures["mailbox_dropped"] == 2

    scraped = await server.get("/metrics", headers={"Accept": "text/plain;version=0.0.4"})
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = samples(parse_text(scraped.text))
    for name, value in figures.items():
        if name == "status":
            continue
        counter = name in ("polls_replaced", "mailbox_dropped", "calls_forwarded",
                           "calls_forward_unanswered", "relay_restarts")  # fmt: skip
        assert text["lwork_" + name + ("_total" if counter else "")] == value, name
    assert "# TYPE lwork_held_polls gauge" in scraped.text
    assert "# TYPE lwork_calls_forwarded_total counter" in scraped.text

    prometheus_accept = ("application/openmetrics-text;version=1.0.0,"
                         "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # fmt: skip
    om = await server.get("/metrics", headers={"Accept": prometheus_accept})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    assert samples(parse_om(om.text))["lwork_mailbox_dropped_total"] == 2
