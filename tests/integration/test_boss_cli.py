"""``lwork boss credit|balance``: the operator's top-ups, as a real process on a fresh database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from lwork.billing.buckets import add_months
from lwork.billing.ledger import LedgerStore
from lwork.billing.rating import Balance, Tariff
from lwork.calls.records import CallRecord, Quality
from lwork.calls.records_store import RecordStore
from lwork.storage.engine import create_engine


def lwork(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LWORK_DATA_DIR": str(tmp_path), "LWORK_DATABASE__URL": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lwork", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_credit_and_balance_of_a_provisioned_account(tmp_path: Path) -> None:
    assert lwork(tmp_path, "boss", "open", "02100001111", "boss-pw").returncode == 0
    first = lwork(tmp_path, "boss", "credit", "02100001111", "--minutes", "30", "--ref", "o-1")
    assert first.returncode == 0, first.stderr
    assert "02100001111 (dth): 30 package minutes" in first.stdout
    again = lwork(tmp_path, "boss", "credit", "02100001111", "--minutes", "30", "--ref", "o-1")
    assert again.returncode == 0 and "credited before: nothing changed" in again.stdout
    more = lwork(tmp_path, "boss", "credit", "02100001111", "--minutes", "5")
    assert "35 package minutes" in more.stdout
    shown = lwork(tmp_path, "boss", "balance", "02100001111")
    assert shown.stdout.splitlines()[0] == "02100001111 (dth): 35 package minutes usable now"


def test_a_package_of_months_from_the_cli(tmp_path: Path) -> None:
    assert lwork(tmp_path, "boss", "open", "02100001111", "boss-pw").returncode == 0
    env = {"LWORK_BILLING__TIMEZONE": "Asia/Shanghai"}
    args = ("boss", "package", "02100001111", "--minutes", "100", "--periods", "2", "--start",
            "2020-01-31", "--ref", "p-1")  # fmt: skip
    granted = lwork(tmp_path, *args, env=env)
    assert granted.returncode == 0, granted.stderr
    # both months of 2020 are long over: nothing usable, nothing listed
    assert granted.stdout.splitlines()[1:] == [
        "02100001111 (dth): 0 package minutes usable now", "  no packages"]  # fmt: skip
    again = lwork(tmp_path, *args, env=env)
    assert again.returncode == 0 and "granted before: nothing changed" in again.stdout
    too_long = lwork(tmp_path, "boss", "package", "02100001111", "--minutes", "60", "--start",
                     "2020-01-31", "--periods", "1200", env=env)  # fmt: skip
    assert too_long.returncode == 1 and "1..120 periods" in too_long.stderr
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    last = add_months(today, 1) - dt.timedelta(days=1)
    current = lwork(tmp_path, "boss", "package", "02100001111", "--minutes", "60", "--start",
                    today.isoformat(), env=env)  # fmt: skip
    assert current.stdout.splitlines()[1:] == [
        "02100001111 (dth): 60 package minutes usable now",
        f"  60 min from {today.isoformat()} to {last.isoformat()}"]  # fmt: skip
    audit = lwork(tmp_path, "boss", "audit", "--account", "02100001111")
    assert "package" in audit.stdout
    shown = lwork(tmp_path, "boss", "balance", "02100001111", env=env)
    assert shown.stdout.splitlines() == current.stdout.splitlines()[1:]


def test_credits_are_refused_for_unknown_accounts_and_empty_amounts(tmp_path: Path) -> None:
    unknown = lwork(tmp_path, "boss", "credit", "13900000000", "--coins", "3")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
    assert lwork(tmp_path, "boss", "open", "02100001111", "boss-pw").returncode == 0
    empty = lwork(tmp_path, "boss", "credit", "02100001111")
    assert empty.returncode == 1 and "positive amount" in empty.stderr
    negative = lwork(tmp_path, "boss", "credit", "02100001111", "--coins", "-3")
    assert negative.returncode == 1 and "positive amount" in negative.stderr


async def test_call_details_of_an_account_by_local_date(tmp_path: Path) -> None:
    assert lwork(tmp_path, "boss", "open", "02100001111", "boss-pw").returncode == 0  # migrates
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lwork.db'}", 1)
    answered = dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC).timestamp()
    cdr = CallRecord(id="n1@@" + "a" * 32, account="02100001111", kind="out",
                     caller="02100001111", callee="02079460000", caller_id="02100001111",
                     started_at=answered - 4, answered_at=answered, ended_at=answered + 61,
                     end_reason="hangup_caller", sip_status=200, node="n1",
                     quality=Quality(mos=4.3, loss=0.01, jitter_ms=3.5, rtt_ms=42.0))  # fmt: skip
    await LedgerStore(engine).credit("02100001111", "credit:x", Balance(minutes=5), None, 1.0)
    records = RecordStore(engine, LedgerStore(engine))
    await records.close(cdr, Tariff(pays_minutes=True), answered + 61)
    await engine.dispose()
    found = lwork(tmp_path, "boss", "cdrs", "02100001111", "--start", "2026-03-31",
                  "--end", "2026-03-31")  # fmt: skip
    assert found.returncode == 0, found.stderr
    [row] = [json.loads(line) for line in found.stdout.splitlines()]
    assert row == {
        "id": cdr.id, "account": "02100001111", "kind": "out", "caller": "02100001111",
        "callee": "02079460000", "caller_id": "02100001111", "start": "2026-03-31T23:29:56+00:00",
        "answer": "2026-03-31T23:30:00+00:00", "end": "2026-03-31T23:31:01+00:00",
        "billsec": 61, "minutes": 2,
        "charge": {"coins": 0, "gift_coins": 0, "minutes": 2, "forgiven": 0},
        "end_reason": "hangup_caller", "sip_status": 200,
        "quality": {"mos": 4.3, "loss": 0.01, "jitter_ms": 3.5, "rtt_ms": 42.0}, "node": "n1",
    }  # fmt: skip
    # the same call in Shanghai's calendar falls on 1 April
    shanghai = {"LWORK_BILLING__TIMEZONE": "Asia/Shanghai"}
    other = lwork(tmp_path, "boss", "cdrs", "02100001111", "--start", "2026-03-31",
                  "--end", "2026-03-31", env=shanghai)  # fmt: skip
    assert other.stdout.strip() == "no calls of 02100001111"
    april = lwork(tmp_path, "boss", "cdrs", "02100001111", "--start", "2026-04-01",
                  "--end", "2026-04-01", env=shanghai)  # fmt: skip
    assert json.loads(april.stdout)["id"] == cdr.id
    assert json.loads(april.stdout)["answer"] == "2026-04-01T07:30:00+08:00"
    backwards = lwork(tmp_path, "boss", "cdrs", "02100001111", "--start", "2026-04-02",
                      "--end", "2026-04-01")  # fmt: skip
    assert backwards.returncode == 1 and "before" in backwards.stderr


def test_products_lists_the_catalogue(tmp_path: Path) -> None:
    shown = lwork(tmp_path, "boss", "products")
    assert shown.returncode == 0, shown.stderr
    assert "coins_300\tcommon\t30.00 yuan\t300 coins" in shown.stdout.splitlines()
    assert "minutes_300x3\tdth\t150.00 yuan\t300 minutes × 3 period(s) of 30 days" in shown.stdout


def test_close_and_the_audit_trail_of_cli_actions(tmp_path: Path) -> None:
    assert lwork(tmp_path, "boss", "open", "02100001111", "secret-boss-pw").returncode == 0
    unknown = lwork(tmp_path, "boss", "activate", "02100009999")
    assert unknown.returncode == 1 and "not provisioned" in unknown.stderr
    closed = lwork(tmp_path, "boss", "close", "02100001111")
    assert closed.returncode == 0 and "closed 02100001111" in closed.stdout
    again = lwork(tmp_path, "boss", "activate", "02100001111")
    assert again.returncode == 1 and "is closed" in again.stderr
    trail = lwork(tmp_path, "boss", "audit")
    assert trail.returncode == 0, trail.stderr
    lines = trail.stdout.splitlines()
    assert [line.split()[1:5] for line in lines] == [
        ["cli", "open", "02100001111", "ok"],
        ["cli", "activate", "02100009999", "account_not_exist"],
        ["cli", "close", "02100001111", "ok"],
        ["cli", "activate", "02100001111", "account_closed"],
    ]
    assert "secret-boss-pw" not in trail.stdout
    mine = lwork(tmp_path, "boss", "audit", "--account", "02100009999")
    assert len(mine.stdout.splitlines()) == 1
