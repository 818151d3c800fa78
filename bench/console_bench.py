"""The console's benchmark (issue 16). Run by hand from the repository root:

    .venv/bin/python -m bench.console_bench [--calls 1000] [--seconds 10] [--viewers 1,10,50]
        [--rounds 3] [--smoke]

Prints one JSON line per figure, each with the reference measured in the same run:

* ``console_viewer_cpu``: server CPU seconds per viewer per second of the live-calls event
  stream (``/admin/calls/events``, a snapshot a second) with ``--calls`` answered app-to-app
  calls in the engine's live table (created through the API as ``bench.calls_bench`` makes them,
  one RTP packet each way through the built-in relay), for each number of viewers, each viewer
  a raw keep-alive socket reading the stream. Reference: the same server and calls with no
  viewer, same run. Process CPU time from ``/proc`` (wall-clock is meaningless on a shared
  machine); the relay child's CPU is reported apart (the snapshot asks it for the calls'
  figures).
* ``console_first_paint``: the live-calls page in Debian's chromium (Playwright,
  ``executable_path``), ``first-paint`` and ``first-contentful-paint`` from the browser's
  performance paint timing, and the HTML's size; with ``--calls`` live calls, and as the
  reference the same page of the same server before the calls were made. Median of ``--rounds``
  fresh loads.
* ``status_polls_metrics_cost``: status-poll throughput (``bench.calls_bench``'s status mode:
  wrk cycling over the calls' session ids) of two servers alike but for ``metrics.enabled``:
  one as shipped (on), one with it off (the hot paths observe nothing). Runs interleaved
  on/off, the ratio off/on is the cost; server CPU per request of each, and one observation's
  CPU timed alone in this process (a floor the interleaved runs cannot resolve on a busy
  machine).

Exits 1, saying why on stderr, when a call was not made, a viewer got no snapshot or a
snapshot did not count the calls, the page did not list them, wrk saw errors, or a figure is
missing. ``--smoke``: 20 calls, viewers 1 and 3, one-second windows, for CI.

Placement as ``bench.calls_bench``: each server on core 0, its relay child on core 1, the
viewers, wrk and the browser on core 1. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench._calls_common import (
    base_overrides,
    callee_phone,
    caller_phone,
    children,
    context,
    cpu_seconds,
    populate,
    server,
    write_settings,
)
from bench._calls_status import create_calls, cycling_script, sweep, wrk
from bench._verdict import Verdict
from bench.http_bench import can_pin, free_port, pinned, run_async
from lwork.app import build_app
from lwork.settings import Settings

CHROMIUM = "/usr/bin/chromium"
OPERATOR, PASSWORD = "bench", "bench operator password"
CALLS = "/lwork/mobile/voip/calls"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
verdict = Verdict("console")
emit = verdict.emit


async def add_operator(settings: Settings) -> None:
    app, services = build_app(settings)
    async with app.router.lifespan_context(app):
        await services.operators.add(OPERATOR, "admin", PASSWORD, time.time())


def sign_in(port: int) -> tuple[str, str]:
    """The console's session cookie (name, value) of the benchmark's operator."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        form = client.get("/admin/sign-in")
        found = _CSRF.search(form.text)
        assert found is not None, form.text
        r = client.post("/admin/sign-in", data={"csrf": found.group(1), "name": OPERATOR,
                                                "password": PASSWORD})  # fmt: skip
        verdict.require(r.status_code == 303, "console", f"sign-in answered {r.status_code}")
        name = Settings().admin.cookie_name
        value = client.cookies.get(name)
        assert value is not None, dict(client.cookies)
        return name, value


class Viewer:
    """One open live-calls page's event stream on a raw socket: counts events and bytes."""

    def __init__(self) -> None:
        self.events = 0
        self.bytes = 0
        self.status = 0
        self.first: bytes = b""

    async def watch(self, port: int, cookie: tuple[str, str], until: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                (f"GET /admin/calls/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Cookie: {cookie[0]}={cookie[1]}\r\nAccept: text/event-stream\r\n\r\n").encode()
            )  # fmt: skip
            head = await reader.readuntil(b"\r\n\r\n")
            self.status = int(head.split(b" ", 2)[1])
            tail = b""
            while (left := until - time.monotonic()) > 0:
                try:
                    chunk = await asyncio.wait_for(reader.read(1 << 16), left)
                except TimeoutError:
                    break
                if not chunk:
                    break
                self.bytes += len(chunk)
                seen = tail + chunk
                self.events += seen.count(b"event: calls")
                if len(self.first) < 4096:
                    self.first += chunk[: 4096 - len(self.first)]
                tail = seen[-11:]  # an event name cut between two reads is counted once
        finally:
            writer.close()


def viewer_figures(
    port: int, pid: int, cookie: tuple[str, str], args: argparse.Namespace, calls: int,
    extra: dict[str, Any],
) -> None:  # fmt: skip
    relays = children(pid)

    def window(count: int) -> tuple[float, float, list[Viewer]]:
        viewers = [Viewer() for _ in range(count)]
        until = time.monotonic() + args.seconds

        async def run() -> None:
            await asyncio.gather(*(v.watch(port, cookie, until) for v in viewers))

        server_before = cpu_seconds(pid)
        relay_before = sum(cpu_seconds(r) for r in relays)
        began = time.perf_counter()
        if viewers:
            run_async(run())
        else:
            time.sleep(args.seconds)
        wall = time.perf_counter() - began
        server = (cpu_seconds(pid) - server_before) / wall
        relay = (sum(cpu_seconds(r) for r in relays) - relay_before) / wall
        return server, relay, viewers

    window(1)  # warm-up: the first snapshot's relay queries, the template
    reference, relay_reference, _ = window(0)
    for count in args.viewers:
        share, relay, viewers = window(count)
        events = [v.events for v in viewers]
        sent = sum(v.bytes for v in viewers)
        snapshot = viewers[0].first.decode(errors="replace")
        counted = f'"total": {calls}' in snapshot
        emit(
            {
                "figure": "console_viewer_cpu",
                "viewers": count,
                "live_calls": calls,
                "value": round((share - reference) / count, 5),
                "unit": "server CPU seconds per viewer per second",
                "server_cpu_share": round(share, 3),
                "reference": "same server and calls, no viewer, same run",
                "reference_server_cpu_share": round(reference, 3),
                "relay_cpu_share": round(relay, 3),
                "reference_relay_cpu_share": round(relay_reference, 3),
                "events_per_viewer_min": min(events),
                "kib_per_viewer_per_s": round(sent / count / args.seconds / 1024, 1),
                "seconds": args.seconds,
                **extra,
            }
        )
        verdict.require(all(v.status == 200 for v in viewers), "console_viewer_cpu",
                        f"stream statuses {sorted({v.status for v in viewers})}")  # fmt: skip
        verdict.require(min(events) >= max(1, int(args.seconds) - 1), "console_viewer_cpu",
                        f"{count} viewers: a viewer got {min(events)} snapshots")  # fmt: skip
        verdict.require(counted, "console_viewer_cpu", f"a snapshot not counting {calls} calls")


async def paint_times(port: int, cookie: tuple[str, str], rounds: int) -> list[dict[str, Any]]:
    """``rounds`` fresh loads of the live-calls page: paint timings and the HTML's size."""
    from playwright.async_api import async_playwright

    base = f"http://127.0.0.1:{port}"
    found = []
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            for round_ in range(rounds + 1):  # the first, a fresh browser's, is not counted
                context_ = await chromium.new_context(viewport={"width": 1280, "height": 800})
                await context_.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base}])
                page = await context_.new_page()
                await page.goto(base + "/admin/calls", wait_until="load")
                # The paint entries arrive once the browser has painted, maybe after "load".
                # Asked from here: Playwright's in-page wait missed them now and then while
                # the page redrew 500 rows a second on a busy machine.
                for _ in range(100):
                    if await page.evaluate(
                        """() => performance.getEntriesByType("paint").some(
                            (e) => e.name === "first-contentful-paint")"""
                    ):
                        break
                    await asyncio.sleep(0.2)
                timing = await page.evaluate(
                    """() => {
                        const paint = Object.fromEntries(performance.getEntriesByType("paint")
                            .map((e) => [e.name, e.startTime]));
                        const nav = performance.getEntriesByType("navigation")[0];
                        return {fp: paint["first-paint"], fcp: paint["first-contentful-paint"],
                                response_end: nav.responseEnd, html_bytes: nav.transferSize,
                                rows: document.querySelectorAll("#calls tr[data-sid]").length};
                    }"""
                )
                if round_ > 0:
                    found.append(timing)
                await context_.close()
        finally:
            await chromium.close()
    return found


def paint_figure(without: list[dict[str, Any]], with_calls: list[dict[str, Any]], calls: int,
                 extra: dict[str, Any]) -> None:  # fmt: skip
    def median(rows: list[dict[str, Any]], key: str) -> float | None:
        found = [float(r[key]) for r in rows if r[key]]
        return round(statistics.median(found), 1) if found else None

    emit(
        {
            "figure": "console_first_paint",
            "page": "/admin/calls",
            "live_calls": calls,
            "rows_listed": with_calls[0]["rows"],
            "value": median(with_calls, "fcp"),
            "unit": "ms to first-contentful-paint (median of fresh loads)",
            "first_paint_ms": median(with_calls, "fp"),
            "response_end_ms": median(with_calls, "response_end"),
            "html_kib": round(with_calls[0]["html_bytes"] / 1024, 1),
            "reference": "same page, same server, no call, same run",
            "reference_value": median(without, "fcp"),
            "reference_first_paint_ms": median(without, "fp"),
            "reference_response_end_ms": median(without, "response_end"),
            "reference_html_kib": round(without[0]["html_bytes"] / 1024, 1),
            "loads": len(with_calls),
            "loads_without_a_paint_entry": sum(not r["fcp"] for r in with_calls + without),
            "browser": "Debian chromium, headless, Playwright",
            **extra,
        }
    )
    for rows, which in ((with_calls, "with calls"), (without, "without calls")):
        painted = sum(bool(r["fcp"]) for r in rows)
        verdict.require(painted * 2 > len(rows), "console_first_paint",
                        f"{which}: {painted} of {len(rows)} loads reported a paint")  # fmt: skip
    verdict.require(with_calls[0]["rows"] == min(calls, 500), "console_first_paint",
                    f"the page listed {with_calls[0]['rows']} of {calls} calls")  # fmt: skip


def observation_cpu_us(count: int = 200_000) -> float:
    """CPU microseconds of one ``Telemetry.http_answered`` (what the status path does for
    metrics), timed alone in this process: a floor the interleaved runs cannot resolve when the
    machine is busy."""
    from lwork.telemetry import Telemetry

    telemetry = Telemetry()
    began = time.process_time()
    for n in range(count):
        telemetry.http_answered("GET /lwork/mobile/voip/calls", 200, 0.001 * (n % 50))
    return (time.process_time() - began) / count * 1e6


def metrics_figure(ports: dict[str, int], pids: dict[str, int], sids: dict[str, list[str]],
                   args: argparse.Namespace, tmp: Path, extra: dict[str, Any]) -> None:  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    cpu_us: dict[str, list[float]] = {"on": [], "off": []}
    scripts = {k: cycling_script(sids[k], tmp, f"metrics_{k}") for k in ports}
    for key in ports:  # warm-up
        wrk(ports[key], scripts[key], f"{CALLS}?session_id={sids[key][0]}", 1.0)
    for round_ in range(args.rounds):
        for key in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            path = f"{CALLS}?session_id={sids[key][0]}"
            before = cpu_seconds(pids[key])
            run = wrk(ports[key], scripts[key], path, args.seconds)
            served = run["rps"] * args.seconds
            cpu_us[key].append((cpu_seconds(pids[key]) - before) / max(served, 1) * 1e6)
            runs[key].append(run)
    ratios = [off["rps"] / on["rps"] for on, off in zip(runs["on"], runs["off"], strict=True)]
    observation = observation_cpu_us()
    cpu_on = statistics.median(cpu_us["on"])
    emit(
        {
            "figure": "status_polls_metrics_cost",
            "path": f"GET {CALLS}?session_id=… (cycling over {len(sids['on'])} live calls)",
            "value": round(statistics.median(r["rps"] for r in runs["on"])),
            "unit": "requests/s with metrics (as shipped)",
            "reference": "same server with metrics.enabled = false, runs interleaved, same run",
            "reference_value": round(statistics.median(r["rps"] for r in runs["off"])),
            "ratio_off_to_on": round(statistics.median(ratios), 3),
            "round_ratios": [round(r, 3) for r in ratios],
            "server_cpu_us_per_request": round(statistics.median(cpu_us["on"]), 1),
            "reference_server_cpu_us_per_request": round(statistics.median(cpu_us["off"]), 1),
            "observation_cpu_us": round(observation, 3),
            "observation_share_of_request_cpu": round(observation / cpu_on, 4),
            "cpu_ratio_on_to_off": round(
                statistics.median(cpu_us["on"]) / statistics.median(cpu_us["off"]), 3
            ),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in runs["on"]), 2),
            "reference_p50_ms": round(statistics.median(r["p50_ms"] for r in runs["off"]), 2),
            "errors": sum(r["errors"] for k in runs for r in runs[k]),
            "seconds_per_run": args.seconds,
            **extra,
        }
    )
    for key in runs:
        verdict.none_failed("status_polls_metrics_cost", f"requests ({key})",
                            sum(r["errors"] for r in runs[key]))  # fmt: skip
        verdict.some("status_polls_metrics_cost", f"requests ({key})",
                     min(r["rps"] for r in runs[key]))  # fmt: skip


def console_figures(
    tmp: Path, overrides: dict[str, Any], args: argparse.Namespace, extra: dict[str, Any]
) -> None:
    """The live-calls page's viewers and first paint, on a server of its own."""
    port, n = free_port(), args.calls
    with server(write_settings(tmp, overrides), port) as proc:
        cookie = sign_in(port)
        without = run_async(paint_times(port, cookie, args.rounds))
        t0 = time.monotonic()
        sids = run_async(create_calls(port, n))[0]
        extra = {**extra, "calls_created_in_s": round(time.monotonic() - t0, 1)}
        viewer_figures(port, proc.pid, cookie, args, n, extra)
        with_calls = run_async(paint_times(port, cookie, args.rounds))
        paint_figure(without, with_calls, n, extra)
        hung_up = run_async(sweep(port, sids, "DELETE"))
        verdict.require(hung_up == {"ok": n}, "console", f"hang-ups: {hung_up}")


async def gather(*steps: Any) -> list[Any]:
    return list(await asyncio.gather(*steps))


def metrics_figures(
    tmp: Path, overrides: dict[str, dict[str, Any]], args: argparse.Namespace,
    extra: dict[str, Any],
) -> None:  # fmt: skip
    """Two servers alike but for ``metrics.enabled``, started and given their calls one
    after the other (``--swap``: the one without metrics first, to see that order does not
    matter), then measured interleaved."""
    ports = {"on": free_port(), "off": free_port()}
    order = ("off", "on") if args.swap else ("on", "off")
    with contextlib.ExitStack() as stack:
        pids = {}
        for key in order:
            proc = stack.enter_context(
                server(write_settings(tmp / key, overrides[key]), ports[key])
            )
            pids[key] = proc.pid
        # Both at once: each set of calls has its own RTP sockets, and neither server's relay
        # sends its RTCP reports to a port the other set's sockets reuse after the first closed.
        made = run_async(gather(*(create_calls(ports[key], args.calls) for key in order)))
        sids = {key: calls[0] for key, calls in zip(order, made, strict=True)}
        metrics_figure(ports, pids, sids, args, tmp, {**extra, "started_first": order[0]})
        for key in order:
            hung_up = run_async(sweep(ports[key], sids[key], "DELETE"))
            verdict.require(hung_up == {"ok": args.calls}, "console", f"hang-ups: {hung_up}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="live calls in the engine")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measuring window")
    parser.add_argument("--viewers", default="1,10,50", help="viewer counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="page loads; status-poll rounds")
    parser.add_argument("--only", choices=["console", "metrics"], help="one part only")
    parser.add_argument("--swap", action="store_true", help="start the metrics-off server first")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    args = parser.parse_args()
    args.viewers = [int(v) for v in args.viewers.split(",")]
    if args.smoke:
        args.calls, args.seconds, args.viewers, args.rounds = 20, 2.0, [1, 3], 1
    if not shutil.which("wrk"):
        raise SystemExit("wrk not installed: apt-get install wrk")
    if not shutil.which(CHROMIUM):
        raise SystemExit("chromium not installed: apt-get install chromium")
    if can_pin():
        os.sched_setaffinity(0, {1})
    extra = context(
        {
            "db": "sqlite",
            "server": "bench.http_server: 1 uvicorn worker, uvloop, httptools"
            + (", core 0" if pinned(0) else ", unpinned"),
            "relay": "built-in, child process" + (", core 1" if can_pin() else ""),
            "caveat": "a 2-core machine shared with other work: compare a figure with its "
            "reference of the same run, not across runs",
            "smoke": args.smoke,
        }
    )
    n = args.calls
    with tempfile.TemporaryDirectory(prefix="lwork-console-bench-") as name:
        tmp = Path(name)
        overrides: dict[str, dict[str, Any]] = {}
        for key in ("console", "on", "off"):
            overrides[key] = base_overrides(tmp / key)
            overrides[key]["admin"] = {"live_streams": max(args.viewers) + 8}
        overrides["off"]["metrics"] = {"enabled": False}
        phones = [caller_phone(i) for i in range(n)] + [callee_phone(i) for i in range(n)]
        t0 = time.monotonic()
        (tmp / "console").mkdir()
        asyncio.run(populate(Settings(**overrides["console"]), phones, set(phones[n:])))
        asyncio.run(add_operator(Settings(**overrides["console"])))
        for key in ("on", "off"):  # the same database, copied: the servers differ in nothing else
            shutil.copytree(tmp / "console", tmp / key)
        extra["populate_s"] = round(time.monotonic() - t0, 1)
        expected = []
        if args.only != "metrics":
            expected += ["console_viewer_cpu", "console_first_paint"]
            console_figures(tmp / "console", overrides["console"], args, extra)
        if args.only != "console":
            expected.append("status_polls_metrics_cost")
            metrics_figures(tmp, overrides, args, extra)
    verdict.conclude(expected)


if __name__ == "__main__":
    main()
