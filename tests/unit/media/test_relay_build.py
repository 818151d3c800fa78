"""The relay's compiled (mypyc) and interpreted builds: which one a process runs, and why."""

from __future__ import annotations

import importlib.machinery
import logging
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from lwork.media.relay import compiled
from lwork.media.relay.compiled import COMPILED, INTERPRETED_ENV, decide, stale_modules

ROOT = Path(__file__).resolve().parents[3]
RELAY_DIR = Path(compiled.__file__).parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
SHOW_FILES = (
    "import importlib, lwork.media.relay.compiled as c\n"
    f"for m in {COMPILED!r}:\n"
    "    print(importlib.import_module('lwork.media.relay.' + m).__file__)\n"
    "print(c.BUILD, c.WHY)\n"
)


def _tree(tmp_path: Path, modules: tuple[str, ...], *, edited: tuple[str, ...] = ()) -> Path:
    """Sources and (fake) extensions; the `edited` sources are 10 s newer than theirs."""
    for module in modules:
        (tmp_path / f"{module}.py").write_text("")
        (tmp_path / f"{module}{SUFFIX}").write_bytes(b"")
        os.utime(tmp_path / f"{module}{SUFFIX}", (1000.0, 1000.0))
        newer = 1010.0 if module in edited else 1001.0
        os.utime(tmp_path / f"{module}.py", (newer, newer))
    return tmp_path


def test_the_build_hook_compiles_exactly_the_modules_the_import_hook_knows() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
    assert sorted(Path(path).stem for path in hook["include"]) == sorted(COMPILED)
    assert all(path.startswith("src/lwork/media/relay/") for path in hook["include"])


def test_a_source_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    tree = _tree(tmp_path, ("rtp", "stats"), edited=("stats",))
    assert stale_modules(tree, ("rtp", "stats")) == ["stats"]
    # Unpacked together (1 s apart, either order): not stale.
    assert stale_modules(_tree(tmp_path, ("rtp",)), ("rtp",)) == []


def test_decide_compiled_only_when_every_extension_is_there_fresh_and_not_refused(
    tmp_path: Path,
) -> None:
    assert decide(tmp_path, {}) == (
        "interpreted",
        "installed without the mypyc build (no compiler, or hooks off)",
    )
    tree = _tree(tmp_path, COMPILED)
    assert decide(tree, {}) == ("compiled", None)
    assert decide(tree, {INTERPRETED_ENV: "0"}) == ("compiled", None)
    assert decide(tree, {INTERPRETED_ENV: "1"}) == ("interpreted", f"{INTERPRETED_ENV} is set")
    edited = _tree(tmp_path, COMPILED, edited=("session", "rtp"))
    build, why = decide(edited, {})
    assert build == "interpreted" and why is not None and "rtp, session" in why


def _run(env: dict[str, str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_FILES],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


needs_build = pytest.mark.skipif(
    compiled.extension_of(RELAY_DIR, "session") is None,
    reason="lwork installed without the mypyc build (HATCH_BUILD_NO_HOOKS or no compiler)",
)


@needs_build
def test_an_installed_build_runs_the_compiled_modules(tmp_path: Path) -> None:
    *files, mode = _run({INTERPRETED_ENV: ""}, tmp_path)
    assert mode == "compiled None"
    assert all(name.endswith(".so") for name in files), files


@needs_build
def test_the_environment_switch_runs_every_module_from_source(tmp_path: Path) -> None:
    *files, mode = _run({INTERPRETED_ENV: "1"}, tmp_path)
    assert mode == f"interpreted {INTERPRETED_ENV} is set"
    assert [Path(name).name for name in files] == [f"{m}.py" for m in COMPILED]


@needs_build
def test_an_edit_since_the_build_runs_every_module_from_source(tmp_path: Path) -> None:
    """A copy of the installed tree where one source is newer than its extension: the import
    hook takes all of them from source (a mix would hand interpreted objects to native code)."""
    src = ROOT / "src"
    copy = tmp_path / "src"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    session = copy / "lwork/media/relay/session.py"
    later = (copy / f"lwork/media/relay/session{SUFFIX}").stat().st_mtime + 60
    os.utime(session, (later, later))
    *files, mode = _run({"PYTHONPATH": str(copy), INTERPRETED_ENV: ""}, tmp_path)
    assert mode.startswith("interpreted sources edited since the build: session")
    assert all(name.startswith(str(copy)) and name.endswith(".py") for name in files), files


async def test_the_relay_says_at_start_which_build_it_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lwork.media.relay.config import RelayConfig
    from lwork.media.relay.server import RelayServer

    caplog.set_level(logging.INFO, logger="lwork.media.relay.server")
    async with RelayServer(RelayConfig(ng_port=0, port_min=23000, port_max=23009)):
        pass
    why = f" ({compiled.WHY})" if compiled.WHY else ""
    assert f"media relay: per-packet path {compiled.BUILD}{why}" in caplog.messages
