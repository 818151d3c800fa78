"""App versions (CONTRACT §7): operator data, set with ``lwork versions set``."""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from lwork.http.request import ApiRequest
from lwork.http.routing import Handler, Reply, Route
from lwork.storage.tables import app_versions

KINDS = ("default", "dth", "common")


class VersionResponse(Struct, kw_only=True):
    status: str = "ok"
    i_version_no: str
    i_version_path: str
    i_version_info: str
    version_no: str
    version_path: str
    version_info: str


class VersionStore:
    """Versions change rarely and are read on every app start: reads are cached for
    ``cache_s`` (a change made on another node shows within that time)."""

    def __init__(
        self, engine: AsyncEngine, monotonic: Callable[[], float], cache_s: float = 5.0
    ) -> None:
        self._engine = engine
        self._monotonic = monotonic
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, VersionResponse | None]] = {}

    async def get(self, kind: str) -> VersionResponse | None:
        now = self._monotonic()
        cached = self._cache.get(kind)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        found = await self._load(kind)
        self._cache[kind] = (now, found)
        return found

    async def _load(self, kind: str) -> VersionResponse | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(app_versions).where(app_versions.c.kind == kind))
            ).first()
        if row is None:
            return None
        return VersionResponse(
            i_version_no=row.i_version_no,
            i_version_path=row.i_version_path,
            i_version_info=row.i_version_info,
            version_no=row.version_no,
            version_path=row.version_path,
            version_info=row.version_info,
        )

    async def set(self, kind: str, version: VersionResponse) -> None:
        self._cache.pop(kind, None)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        async with self._engine.begin() as conn:
            await conn.execute(delete(app_versions).where(app_versions.c.kind == kind))
            await conn.execute(
                app_versions.insert().values(
                    kind=kind,
                    version_no=version.version_no,
                    version_path=version.version_path,
                    version_info=version.version_info,
                    i_version_no=version.i_version_no,
                    i_version_path=version.i_version_path,
                    i_version_info=version.i_version_info,
                )
            )


class VersionApi:
    def __init__(self, store: VersionStore) -> None:
        self._store = store

    def routes(self) -> list[Route]:
        m = "/lwork/mobile/"

        def handler(kind: str) -> Handler:
            async def version(req: ApiRequest) -> Reply:
                found = await self._store.get(kind)
                # The contract's answer when nothing is configured carries no reason.
                return found if found is not None else {"status": "failed"}

            return version

        return [
            Route("GET", m + "version_no", handler("default"), response=VersionResponse),
            Route("GET", m + "version_dth_no", handler("dth"), response=VersionResponse),
            Route("GET", m + "version_common_no", handler("common"), response=VersionResponse),
            Route("GET", m + "version_commont_no", handler("common"), response=VersionResponse),
        ]
