"""Which build of the relay's per-packet modules runs: compiled by mypyc, or interpreted.

`pip install` compiles the modules in COMPILED with mypyc (pyproject.toml's build hook) and
puts the extension modules beside their sources, where Python imports them first. Two cases
must not run them:

- a source was edited after the last build: the extension would silently run the old code
  (an editable install is only rebuilt by `pip install -e .`);
- `LWORK_INTERPRETED=1`: an operator or developer wants the sources (a line profiler, a
  debugger, or a comparison in bench/relay_bench.py).

Then `choose()` installs an import hook that loads all of COMPILED from source. All or none:
the compiled modules call each other's classes natively and would reject an interpreted
`Leg` handed to a compiled `Port`.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = "lwork.media.relay"
COMPILED = (
    "companion",
    "mos",
    "packet_loop",
    "packet_ports",
    "redundant",
    "rtcp",
    "rtp",
    "session",
    "stats",
    "token_bucket",
)
"""Modules compiled by the build hook; pyproject.toml lists the same files (a test checks)."""
INTERPRETED_ENV = "LWORK_INTERPRETED"
STALE_AFTER_S = 2.0
"""A source this much newer than its extension was edited since the build (a wheel unpacks
both within a moment of each other, in no set order)."""


def extension_of(directory: Path, module: str) -> Path | None:
    """The compiled extension of `module` in `directory`, if there is one for this Python."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = directory / f"{module}{suffix}"
        if candidate.exists():
            return candidate
    return None


def stale_modules(directory: Path, modules: Sequence[str] = COMPILED) -> list[str]:
    """Modules whose source is newer than their extension (edited since the last build)."""
    stale = []
    for module in modules:
        extension = extension_of(directory, module)
        source = directory / f"{module}.py"
        if extension is None or not source.exists():
            continue
        if source.stat().st_mtime > extension.stat().st_mtime + STALE_AFTER_S:
            stale.append(module)
    return stale


def decide(directory: Path, environ: dict[str, str]) -> tuple[str, str | None]:
    """(build, why): build is "compiled" or "interpreted"; why says what forced the sources."""
    if not all(extension_of(directory, module) for module in COMPILED):
        return "interpreted", "installed without the mypyc build (no compiler, or hooks off)"
    if environ.get(INTERPRETED_ENV, "") not in ("", "0"):
        return "interpreted", f"{INTERPRETED_ENV} is set"
    stale = stale_modules(directory)
    if stale:
        return "interpreted", f"sources edited since the build: {', '.join(stale)} (reinstall)"
    return "compiled", None


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds COMPILED in their .py files, ahead of the path finder that prefers extensions."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, module = fullname.rpartition(".")
        if package != PACKAGE or module not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, self.directory / f"{module}.py")


BUILD, WHY = decide(Path(__file__).parent, dict(os.environ))
"""What this process runs; the relay logs it at start."""
if BUILD == "interpreted" and WHY is not None and not WHY.startswith("installed"):
    sys.meta_path.insert(0, _SourceFirst(Path(__file__).parent))
