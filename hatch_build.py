"""Build hook: compile the relay's per-packet modules with mypyc (hatch-mypyc), or, where that
fails (no C compiler, no Python headers), build the same package from source only.

A machine without a compiler still installs and runs lwork; its relay runs interpreted (slower
per packet, same behaviour) and says so in its start-up log (lwork.media.relay.compiled).
"""

from __future__ import annotations

from typing import Any

from hatch_mypyc.plugin import MypycBuildHook


class CustomBuildHook(MypycBuildHook):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        try:
            super().initialize(version, build_data)
        except Exception as exc:  # the compiler's output is in the message
            self.clean([version])  # no half-built extensions beside the sources
            lines = str(exc).strip().splitlines()
            self.app.display_warning(
                "lwork: could not compile the media relay with mypyc; it will run interpreted "
                f"(install gcc and the Python headers for the faster build): {lines[-1:]}"
            )


def get_build_hook() -> type[CustomBuildHook]:
    """The hook Hatch uses: it sees MypycBuildHook imported here too and would not choose."""
    return CustomBuildHook
