"""An operator's browser for the console's HTTP tests: its own cookie jar, the forms' CSRF
tokens read from the pages as a browser submits them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

PASSWORD = "correct horse battery"
FORM = {"content-type": "application/x-www-form-urlencoded"}
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


@asynccontextmanager
async def browser(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, as one operator's browser."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


async def sign_in(
    client: httpx.AsyncClient, name: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    form = await client.get("/admin/sign-in")
    assert form.status_code == 200
    data = {"csrf": csrf_of(form), "name": name, "password": password, **extra}
    return await client.post("/admin/sign-in", data=data)
