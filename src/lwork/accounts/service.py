"""Account use cases: registration, login and sessions, passwords, info (CONTRACT §3–4)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwork.accounts.codes import CodeService
from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.passwords import PasswordService
from lwork.accounts.phone import normalise_phone
from lwork.accounts.store import Account, AccountStore, Session
from lwork.accounts.store_records import AlreadyExists
from lwork.errors import Failed, TooManyRequests
from lwork.ids import new_token, token_digest
from lwork.ratelimit import RateLimiter

log = logging.getLogger("lwork.accounts")

COMMON = "common"
DTH = "dth"
_TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class LoginResult:
    account: Account
    did: str
    token: str
    kicked: list[Session]


@dataclass(frozen=True)
class AuthPolicy:
    require_token: bool
    session_ttl_s: float


class AccountService:
    def __init__(
        self,
        *,
        store: AccountStore,
        live: LiveSessions,
        passwords: PasswordService,
        codes: CodeService,
        policy: AuthPolicy,
        failed_logins: RateLimiter,
        wall: Callable[[], float],
        on_kicked: Callable[[str, str], Awaitable[None]] | None = None,
        sessions_changed: Callable[[str], Awaitable[None]] | None = None,
        on_registered: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        """``on_kicked(uuid, device_id)`` tells the push channel a device lost its session to a
        login elsewhere, so it can deliver ``login_otherwhere``; ``sessions_changed(uuid)`` runs
        after an account appeared or its sessions changed, so caches of presence and of live
        sessions (on every node) drop what they knew; ``on_registered(uuid, group)`` runs once
        a new account exists (its welcome credit)."""
        self._store = store
        self._live = live
        self._on_kicked = on_kicked
        self._sessions_changed = sessions_changed
        self._on_registered = on_registered
        self._passwords = passwords
        self._codes = codes
        self._policy = policy
        self._failed_logins = failed_logins
        self._wall = wall

    async def _changed(self, uuid: str) -> None:
        if self._sessions_changed is not None:
            await self._sessions_changed(uuid)

    # SMS codes

    async def send_code(self, uuid: str, purpose: str, client_ip: str) -> None:
        phone = normalise_phone(uuid)
        if not phone:
            raise Failed("invalid_phone")
        exists = await self._store.get(phone) is not None
        if purpose == "register" and exists:
            raise Failed("account_already_exist")
        if purpose == "resetpwd" and not exists:
            raise Failed("account_not_exist")
        await self._codes.send(phone, purpose, client_ip, self._wall())

    # registration

    async def register(self, group: str, uuid: str, auth_code: str, name: str, pwd: str) -> None:
        phone = normalise_phone(uuid)
        if not phone:
            raise Failed("invalid_phone")
        now = self._wall()
        if group == COMMON:
            if await self._store.get(phone) is not None:
                raise Failed("account_already_exist")
            if await self._store.provisioned(phone) is not None:
                raise Failed("account_already_exist", other="did_no_conflict")
            if name and await self._store.name_taken(name):
                raise Failed("username_already_existed")
            if not await self._codes.check(phone, "register", auth_code, now):
                raise Failed("invalid_auth_code")
        else:
            provisioned = await self._store.provisioned(phone)
            if provisioned is None or not provisioned.active:
                raise Failed("not_provisioned")
            if not await self._passwords.verify(provisioned.pwd_hash, auth_code):
                raise Failed("invalid_auth_code")
            if await self._store.get(phone) is not None:
                raise Failed("uuid_already_registered")
            if name and await self._store.name_taken(name):
                raise Failed("username_already_existed")
        pwd_hash = await self._passwords.hash(pwd)
        try:
            await self._store.create(Account(phone, uuid, name or None, pwd_hash, group, None), now)
        except AlreadyExists as exc:
            # Lost a race with a concurrent registration of the same number or name.
            raise Failed("account_already_exist") from exc
        if self._on_registered is not None:
            await self._on_registered(phone, group)
        await self._changed(phone)

    # login and sessions

    async def login(self, acc: str, pwd: str, device_id: str, os_type: str) -> LoginResult:
        if self._passwords.saturated:
            # Refuse before touching the database: under a flood, 429 must be cheap.
            raise TooManyRequests(1)
        account = await self._store.get_by_uuid_or_name(normalise_phone(acc), acc)
        if account is None:
            raise Failed("account_not_existed")
        now = self._wall()
        if wait := self._failed_logins.check(account.uuid, now):
            raise TooManyRequests(wait)
        if not await self._passwords.verify(account.pwd_hash, pwd):
            self._failed_logins.hit(account.uuid, now)
            raise Failed("pwd_not_match")
        token = new_token()
        kicked = await self._store.start_session(
            Session(token_digest(token), account.uuid, device_id, os_type, now), now
        )
        await self._changed(account.uuid)
        provisioned = await self._store.provisioned(account.uuid)
        did = provisioned.did if provisioned and provisioned.did else ""
        others = [s for s in kicked if s.device_id != device_id]
        if others:
            log.info("login of %s on a new device ended %d session(s)", account.uuid, len(others))
        if self._on_kicked is not None:
            for old in {s.device_id for s in others}:
                await self._on_kicked(account.uuid, old)
        return LoginResult(account, did, token, others)

    async def logout(self, uuid: str, device_id: str) -> None:
        phone = normalise_phone(uuid)
        await self._store.end_sessions(phone, self._wall(), "logout", device_id)
        await self._changed(phone)

    async def authorize(self, uuid: str, device_id: str | None, token: str | None) -> Session:
        """The live session that lets this request act for ``uuid`` (CONTRACT §3)."""
        phone = normalise_phone(uuid)
        now = self._wall()
        horizon = now - self._policy.session_ttl_s
        if token:
            session = await self._store.session_by_token(token_digest(token), horizon)
            if session is None or session.uuid != phone:
                raise Failed("no_logined")
        elif self._policy.require_token:
            raise Failed("no_logined")
        else:
            session = await self._live.of(phone)
            if session is None:
                raise Failed("no_logined")
        if device_id is not None and device_id != session.device_id:
            raise Failed("no_logined")
        if now - session.last_seen > _TOUCH_EVERY_S:
            await self._store.touch_session(session.token_hash, now)
        return session

    async def may_call(self, uuid: str) -> None:
        """A deactivated dth account can log in but not call (CONTRACT §4)."""
        provisioned = await self._store.provisioned(normalise_phone(uuid))
        if provisioned is not None and not provisioned.active:
            raise Failed("not_actived")

    async def inactive_among(self, uuids: list[str]) -> set[str]:
        """The deactivated accounts among ``uuids`` (whose live calls must end)."""
        return await self._store.inactive_among(uuids)

    async def registered(self, uuid: str) -> bool:
        return await self._store.get(normalise_phone(uuid)) is not None

    async def group(self, uuid: str) -> str | None:
        """The account's stored group, what its calls are billed by: a provisioned number has
        one before its user registers (BOSS may top it up). None: no such account."""
        number = normalise_phone(uuid)
        account = await self._store.get(number)
        if account is not None:
            return account.group_id
        provisioned = await self._store.provisioned(number)
        return provisioned.group_id if provisioned is not None else None

    async def owner(self, number: str) -> str | None:
        """The account a number (its uuid or a DID bound to it) belongs to."""
        return await self._store.uuid_for_number(normalise_phone(number))

    async def owners(self, numbers: list[str]) -> dict[str, str]:
        """The account each of ``numbers`` (normalised) belongs to, where one does."""
        return await self._store.owners_of(numbers)

    async def did(self, uuid: str) -> str | None:
        """The phone number (DID) bound to an account, shown as its caller id."""
        provisioned = await self._store.provisioned(normalise_phone(uuid))
        return provisioned.did if provisioned is not None and provisioned.did else None

    async def reachable(self, number: str, presence_window_s: float) -> str | None:
        """The account behind ``number`` if its app can be reached now: a live session that
        long-polled within the presence window or has a push registration."""
        uuid = await self._store.uuid_for_number(normalise_phone(number))
        if uuid is None:
            return None
        now = self._wall()
        session = await self._live.of(uuid)
        if session is None:
            return None
        if await self._store.polling_uuids([uuid], now - presence_window_s):
            return uuid
        if await self._store.push_registrations(uuid, session.device_id):
            return uuid
        return None

    # passwords and info

    async def forget_pwd(
        self, group: str, uuid: str, auth_code: str, pwd: str, name: str | None
    ) -> str:
        phone = normalise_phone(uuid)
        account = await self._store.get(phone)
        now = self._wall()
        if group == COMMON:
            if account is None:
                raise Failed("account_not_exist")
            if not await self._codes.check(phone, "resetpwd", auth_code, now):
                raise Failed("invalid_auth_code")
        else:
            provisioned = await self._store.provisioned(phone)
            if account is None or provisioned is None:
                raise Failed("account_not_exist")
            if not await self._passwords.verify(provisioned.pwd_hash, auth_code):
                raise Failed("invalid_auth_code")
            if (name or "") != (account.name or ""):
                raise Failed("username_not_match")
        await self._store.set_password(phone, await self._passwords.hash(pwd))
        # A reset password must not leave a thief's session alive.
        await self._store.end_sessions(phone, now, "password_reset")
        await self._changed(phone)
        return account.name or ""

    async def modify_pwd(self, uuid: str, old_pwd: str, pwd: str) -> str:
        phone = normalise_phone(uuid)
        account = await self._store.get(phone)
        if account is None:
            raise Failed("account_not_exist")
        now = self._wall()
        if wait := self._failed_logins.check(phone, now):
            raise TooManyRequests(wait)
        if not await self._passwords.verify(account.pwd_hash, old_pwd):
            self._failed_logins.hit(phone, now)
            raise Failed("incorrect_old_pwd")
        await self._store.set_password(phone, await self._passwords.hash(pwd))
        return account.name or ""

    async def add_info(self, uuid: str, device_id: str, info: Any, token: str | None) -> None:
        phone = normalise_phone(uuid)
        if await self._store.get(phone) is None:
            raise Failed("account_not_exist")
        await self.authorize(uuid, device_id, token)
        await self._store.set_info(phone, info)

    async def register_push(
        self,
        uuid: str,
        device_id: str | None,
        token: str | None,
        provider: str,
        channel: str,
        user_id: str,
    ) -> None:
        session = await self.authorize(uuid, device_id, token)
        await self._store.register_push(
            session.uuid, session.device_id, provider, channel, user_id, self._wall()
        )
