"""``lwork boss credit|balance``: the operator's top-ups, as a real process on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def lwork(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LWORK_DATA_DIR": str(tmp_path), "LWORK_DATABASE__URL": ""}
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
    assert shown.stdout.strip() == "02100001111 (dth): 35 package minutes"


def test_credits_are_refused_for_unknown_accounts_and_empty_amounts(tmp_path: Path) -> None:
    unknown = lwork(tmp_path, "boss", "credit", "13900000000", "--coins", "3")
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
    assert lwork(tmp_path, "boss", "open", "02100001111", "boss-pw").returncode == 0
    empty = lwork(tmp_path, "boss", "credit", "02100001111")
    assert empty.returncode == 1 and "positive amount" in empty.stderr
    negative = lwork(tmp_path, "boss", "credit", "02100001111", "--coins", "-3")
    assert negative.returncode == 1 and "positive amount" in negative.stderr
