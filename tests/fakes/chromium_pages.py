"""The console's browser tests: a page that collects its script errors, and numbered
full-page screenshots kept under the test's tmp folder and printed at its end (``pytest -s``
shows where to look)."""

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


async def open_page(chromium: Any, **context_options: Any) -> tuple[Any, list[str]]:
    """A page of a new browser context, and the script errors it raises (a list that fills
    as they happen). 30 s for each step: a loaded CI machine runs four test workers."""
    context = await chromium.new_context(**context_options)
    context.set_default_timeout(30000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors
