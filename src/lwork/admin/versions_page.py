"""The app versions page (CONTRACT §7): what ``version_no``, ``version_dth_no`` and
``version_common_no`` answer the apps, one form per kind. Everyone signed in reads it; an
administrator changes it (audited). The values are the ``app_versions`` table's, as
``lwork versions set`` writes them: this node answers the new values at once, the others
within their cache time (``VersionStore``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lwork.admin import action_forms
from lwork.admin.gate import Refused, Visitor, read_form
from lwork.admin.pages import SECURITY_HEADERS, render
from lwork.admin.web import Console
from lwork.appversions import KINDS, VersionResponse, VersionStore

FIELDS = ("version_no", "version_path", "version_info",
          "i_version_no", "i_version_path", "i_version_info")  # fmt: skip


class VersionsPage:
    def __init__(self, console: Console, store: VersionStore) -> None:
        self.console = console
        self.store = store

    def routes(self) -> list[Route]:
        g = self.console.guarded
        return [
            Route("/versions", g(self.page), methods=["GET"]),
            Route("/versions", g(self.change), methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        saved = request.query_params.get("saved", "")
        return await self.show(request, visitor, saved=saved if saved in KINDS else "")

    async def show(
        self, request: Request, visitor: Visitor, status: int = 200, saved: str = "",
        problem: str = "", typed: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        """Every kind's current values; ``typed``: a refused form's values, shown again."""
        kinds: list[dict[str, Any]] = []
        for kind in KINDS:
            found = await self.store.get(kind)
            values = {f: getattr(found, f) if found is not None else "" for f in FIELDS}
            if typed is not None and typed.get("kind") == kind:
                values = {f: typed.get(f, "")[:2000] for f in FIELDS}
            kinds.append({"kind": kind, "configured": found is not None, **values})
        return render(
            "versions.html", self.console.gate.lang(request), status, who=visitor.operator,
            csrf=visitor.csrf, here="/admin/versions", section="versions", kinds=kinds,
            saved=saved, problem=problem,
        )  # fmt: skip

    async def change(self, request: Request) -> Response:
        form = await read_form(request)
        gate = self.console.gate
        kind = form.get("kind", "")[:16]
        try:
            visitor = await gate.changer(request, form)
        except Refused:
            who = await gate.visitor(request)
            await self.console.record(who, "versions", {"kind": kind}, "forbidden")
            raise
        try:
            wanted = action_forms.versions(form)
        except action_forms.FormError as exc:
            await self.console.record(visitor, "versions", {"kind": kind, "detail": str(exc)},
                                      "invalid_params")  # fmt: skip
            problem = f"{gate.translate(request, 'bad_input')}: {exc}"
            return await self.show(request, visitor, 400, problem=problem, typed=form)
        values = {f: getattr(wanted, f) for f in FIELDS}
        await self.store.set(wanted.kind, VersionResponse(**values))
        await self.console.record(visitor, "versions", {"kind": wanted.kind, **values}, "ok")
        return RedirectResponse(f"/admin/versions?saved={wanted.kind}", 303, SECURITY_HEADERS)
