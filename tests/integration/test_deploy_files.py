"""The deployment recipe in ``deploy/`` is what lwork accepts: systemd verifies the units
(every key known, the command there), the example cluster's settings load as a production
node with the compose file's environment and raise none of production's refusals, the
compose file wires every API node to the same database, bus and relay, and the alert rules and
the dashboard name only series lwork exports (issue #16 items 2 and 4)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from lwork.settings import load_settings
from lwork.settings.production import production_problems

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
LWORK = Path(sys.executable).parent / "lwork"


def test_systemd_verifies_the_units_without_a_word(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian: systemd)")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/lwork/.venv/bin/lwork", str(LWORK))
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
    assert len(units) == 2
    run = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr == "" and run.stdout == "", run.stderr
    # The check has teeth: a misspelt key is reported.
    broken = Path(units[0]).read_text().replace("LimitNOFILE=", "LimitNOFILES=")
    Path(units[0]).write_text(broken)
    run = subprocess.run([analyze, "verify", units[0]], capture_output=True, text=True, timeout=60)
    assert "LimitNOFILES" in run.stderr


def compose() -> dict[str, object]:
    loaded = yaml.safe_load((DEPLOY / "cluster" / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_cluster_settings_make_a_production_node(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name in ("api1", "api2"):
        environment = services[name]["environment"]
        for key in [k for k in os.environ if k.startswith("LWORK_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("LWORK_CONFIG", str(DEPLOY / "cluster" / "lwork.toml"))
        monkeypatch.setenv("LWORK_SECRET_KEY", "x" * 43)
        monkeypatch.setenv("LWORK_NODE", environment["LWORK_NODE"])
        settings = load_settings()
        assert settings.env == "production" and settings.node == name
        assert production_problems(settings) == []
        assert settings.bus.url.startswith("redis://redis:")
        assert settings.media.ng_url == "udp://rtpengine:2223"
        assert settings.http.trusted_proxies == [
            services["nginx"]["networks"]["lwork"]["ipv4_address"]
        ]
        assert "${LWORK_SECRET_KEY:?" in environment["LWORK_SECRET_KEY"]  # never a default


def test_every_file_the_compose_file_mounts_is_in_deploy() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = (DEPLOY / "cluster" / source).resolve()
                assert path.exists() or path.name == "tls", volume


async def test_the_alerts_and_the_dashboard_use_only_series_lwork_exports(
    server_factory: Any,
) -> None:
    async with server_factory() as server:
        text = (await server.get("/metrics", headers={"Accept": "text/plain"})).text
    exported = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        exported.update(family.name + s for s in suffixes.get(family.type, [""]))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "lwork.json").read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\blwork_[a-z0-9_]+", expr)}
    assert len(used) >= 10 and used <= exported, sorted(used - exported)
    assert all(rule.get("annotations", {}).get("summary") for group in rules["groups"]
               for rule in group["rules"])  # fmt: skip


def test_promtool_accepts_the_alert_rules_and_they_fire_on_lworks_series(tmp_path: Path) -> None:
    """``promtool test rules`` (deploy/prometheus/alerts_test.yml) feeds lwork's own series to
    the rules: each alert fires when it should and names the instance."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed in CI (Debian: prometheus)")
        pytest.skip("promtool not installed (Debian: prometheus)")
    rules = DEPLOY / "prometheus"
    checked = subprocess.run([promtool, "check", "rules", str(rules / "alerts.yml")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0 and "SUCCESS: 8 rules found" in checked.stdout, checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(rules / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # The tests have teeth: a rule that no longer fires at 2 % of 5xx answers fails them.
    shutil.copy(rules / "alerts_test.yml", tmp_path)
    lenient = (rules / "alerts.yml").read_text().replace("> 0.01", "> 0.5")
    (tmp_path / "alerts.yml").write_text(lenient)
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "alerts_test.yml")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert tested.returncode != 0 and "LworkServerErrors" in tested.stdout + tested.stderr
