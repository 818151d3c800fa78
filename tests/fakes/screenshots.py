"""Numbered full-page screenshots of the console's browser tests, kept under the test's tmp
folder and printed at its end (``pytest -s`` shows where to look)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


class Screenshots:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.saved: list[Path] = []

    def of(self, page: Any) -> Callable[[str], Awaitable[None]]:
        """``shot(name)``: the page as it is now, as ``NN-name.png``."""

        async def shot(name: str) -> None:
            path = self.folder / f"{len(self.saved) + 1:02d}-{name}.png"
            await page.screenshot(path=str(path), full_page=True)
            self.saved.append(path)

        return shot

    def print_paths(self) -> None:
        for path in self.saved:
            print(f"screenshot: {path}")
