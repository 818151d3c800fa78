"""Account use cases: registration, login and sessions, passwords, info (CONTRACT §3–4)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from lwork.accounts.authorization import (
    DEVICE_AND_POLL,
    POLL,
    Guard,
    Proof,
    device_matches,
    from_poll_network,
)
from lwork.accounts.codes import CodeService
from lwork.accounts.guess_store import GuessStore
from lwork.accounts.live_sessions import LiveSessions
from lwork.accounts.passwords import PasswordService
from lwork.accounts.phone import normalise_phone
from lwork.accounts.store import Account, AccountStore, Session
from lwork.accounts.store_records import AlreadyExists
from lwork.addresses import limit_key
from lwork.errors import Failed, TooManyRequests
from lwork.ids import new_token, token_digest

log = logging.getLogger("lwork.accounts")

COMMON = "common"
DTH = "dth"
_TOUCH_EVERY_S = 60.0
# Guess throttling scopes: the account password, and a dth number's BOSS activation password.
_LOGIN = "login:"
_BOSS = "dth:"


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
    poll_window_s: float
    """How recent the long poll whose network vouches for a token-less request must be."""


class AccountService:
    def __init__(
        self,
        *,
        store: AccountStore,
        live: LiveSessions,
        passwords: PasswordService,
        codes: CodeService,
        policy: AuthPolicy,
        guesses: GuessStore,
        wall: Callable[[], float],
        on_kicked: Callable[[str, str], Awaitable[None]] | None = None,
        sessions_changed: Callable[[str], Awaitable[None]] | None = None,
        on_registered: Callable[[str, str], Awaitable[None]] | None = None,
        on_ended: Callable[[str, str], Awaitable[None]] | None = None,
        sms_destination: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``on_kicked(uuid, device_id)`` tells the push channel a device lost its session to a
        login elsewhere, so it can deliver ``login_otherwhere``; ``sessions_changed(uuid)`` runs
        after an account appeared or its sessions changed, so caches of presence and of live
        sessions (on every node) drop what they knew; ``on_registered(uuid, group)`` runs once
        a new account exists (its welcome credit); ``on_ended(uuid, device_id)`` tells the push
        channel a device's session was ended here (logout, a password change), so a poll it
        holds answers ``unlogined`` at once; ``sms_destination(phone)`` raises ``Failed`` when
        no SMS may be sent to that number (the fraud controls' destinations)."""
        self._sms_destination = sms_destination
        self._store = store
        self._live = live
        self._on_kicked = on_kicked
        self._sessions_changed = sessions_changed
        self._on_registered = on_registered
        self._on_ended = on_ended
        self._passwords = passwords
        self._codes = codes
        self._policy = policy
        self._guesses = guesses
        self._wall = wall

    async def _changed(self, uuid: str) -> None:
        if self._sessions_changed is not None:
            await self._sessions_changed(uuid)

    async def _ended(self, uuid: str, ended: list[Session], spare_device: str = "") -> None:
        """After the sessions are ended and the caches cleared: their devices' polls end."""
        await self._changed(uuid)
        if self._on_ended is not None:
            for device_id in {s.device_id for s in ended} - {spare_device}:
                await self._on_ended(uuid, device_id)

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
        if self._sms_destination is not None:
            await self._sms_destination(phone)
        await self._codes.send(phone, purpose, client_ip, self._wall())

    # registration

    async def register(
        self, group: str, uuid: str, auth_code: str, name: str, pwd: str, client_ip: str
    ) -> None:
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
            await self._check_guess(
                _BOSS + phone, client_ip, provisioned.pwd_hash, auth_code, "invalid_auth_code"
            )
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

    async def _check_guess(
        self, scope: str, client_ip: str, pwd_hash: str, guess: str, wrong: str
    ) -> None:
        """Verify a password guess, throttled per (scope, client address); ``wrong`` is the
        failure reason. A throttled guess is refused (429) before it is checked."""
        if self._passwords.saturated:
            raise TooManyRequests(1)  # before counting: a guess that is not checked is none
        address = limit_key(client_ip)
        if wait := await self._guesses.attempt(scope, address):
            raise TooManyRequests(wait)
        try:
            right = await self._passwords.verify(pwd_hash, guess)
        except TooManyRequests:
            await self._guesses.unchecked(scope, address)  # the hash queue filled meanwhile
            raise
        if not right:
            raise Failed(wrong)
        await self._guesses.succeeded(scope, address)

    async def login(
        self, acc: str, pwd: str, device_id: str, os_type: str, client_ip: str
    ) -> LoginResult:
        if self._passwords.saturated:
            # Refuse before touching the database: under a flood, 429 must be cheap.
            raise TooManyRequests(1)
        account = await self._store.get_by_uuid_or_name(normalise_phone(acc), acc)
        if account is None:
            raise Failed("account_not_existed")
        await self._check_guess(
            _LOGIN + account.uuid, client_ip, account.pwd_hash, pwd, "pwd_not_match"
        )
        now = self._wall()
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
        ended = await self._store.end_sessions(phone, self._wall(), "logout", device_id)
        await self._ended(phone, ended)

    async def end_sessions(self, uuid: str, reason: str) -> int:
        """End every live session of the account (an operator's order, from the console): its
        devices' polls answer ``unlogined`` and the apps must log in again; how many ended."""
        phone = normalise_phone(uuid)
        ended = await self._store.end_sessions(phone, self._wall(), reason)
        await self._ended(phone, ended)
        return len(ended)

    async def authorize(self, uuid: str, proof: Proof, guard: Guard) -> Session:
        """The live session that lets this request act for ``uuid`` (CONTRACT §3): the token's,
        or without one, the account's live session when the request shows the evidence
        ``guard`` asks for (``authorization.py``)."""
        phone = normalise_phone(uuid)
        now = self._wall()
        horizon = now - self._policy.session_ttl_s
        if proof.token:
            session = await self._store.session_by_token(token_digest(proof.token), horizon)
            if session is None or session.uuid != phone:
                raise Failed("no_logined")
        elif self._policy.require_token:
            raise Failed("no_logined")
        else:
            session = await self._live.of(phone)
            if session is None or not device_matches(guard, proof.device_id, session.device_id):
                raise Failed("no_logined")
            if guard.poll_network:
                # Only these routes pay a read; query_status and call status never get here.
                seen = await self._store.poll_seen(session.token_hash)
                if not from_poll_network(seen, proof.client_ip, now, self._policy.poll_window_s):
                    raise Failed("no_logined")
        if now - session.last_seen > _TOUCH_EVERY_S:
            await self._store.touch_session(session.token_hash, now)
        return session

    async def may_call(self, uuid: str) -> str | None:
        """A deactivated dth account can log in but not call (CONTRACT §4). The DID bound to
        the account (its caller id), if any: read with the same row."""
        provisioned = await self._store.provisioned(normalise_phone(uuid))
        if provisioned is not None and not provisioned.active:
            raise Failed("not_actived")
        return provisioned.did if provisioned is not None and provisioned.did else None

    async def inactive_among(self, uuids: list[str]) -> set[str]:
        """The deactivated accounts among ``uuids`` (whose live calls must end)."""
        return await self._store.inactive_among(uuids)

    async def registered(self, uuid: str) -> bool:
        return await self._store.get(normalise_phone(uuid)) is not None

    async def group(self, uuid: str) -> str | None:
        """The account's stored group, what its calls are billed by: a provisioned number has
        one before its user registers (BOSS may top it up). None: no such account."""
        return await self._store.group_of(normalise_phone(uuid))

    async def owner(self, number: str) -> str | None:
        """The account a number (its uuid or a DID bound to it) belongs to."""
        return await self._store.uuid_for_number(normalise_phone(number))

    async def did(self, uuid: str) -> str | None:
        """The phone number (DID) bound to an account, shown as its caller id."""
        provisioned = await self._store.provisioned(normalise_phone(uuid))
        return provisioned.did if provisioned is not None and provisioned.did else None

    async def reachable(self, number: str, presence_window_s: float) -> str | None:
        """The account behind ``number`` if its app can be reached now: a live session that
        long-polled within the presence window or has a push registration."""
        not_polled_before = self._wall() - presence_window_s
        uuid, polling = await self._store.owner_and_polling(
            normalise_phone(number), not_polled_before
        )
        if uuid is None:
            return None
        session = await self._live.of(uuid)
        if session is None:
            return None
        if polling:
            return uuid
        if await self._store.push_registrations(uuid, session.device_id):
            return uuid
        return None

    # passwords and info

    async def forget_pwd(
        self, group: str, uuid: str, auth_code: str, pwd: str, name: str | None, client_ip: str
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
            await self._check_guess(
                _BOSS + phone, client_ip, provisioned.pwd_hash, auth_code, "invalid_auth_code"
            )
            if (name or "") != (account.name or ""):
                raise Failed("username_not_match")
        await self._store.set_password(phone, await self._passwords.hash(pwd))
        # A reset password must not leave a thief's session alive.
        ended = await self._store.end_sessions(phone, now, "password_reset")
        await self._ended(phone, ended)
        return account.name or ""

    async def modify_pwd(self, uuid: str, old_pwd: str, pwd: str, proof: Proof) -> str:
        phone = normalise_phone(uuid)
        account = await self._store.get(phone)
        if account is None:
            raise Failed("account_not_exist")
        session = await self.authorize(uuid, proof, DEVICE_AND_POLL)
        await self._check_guess(
            _LOGIN + phone, proof.client_ip, account.pwd_hash, old_pwd, "incorrect_old_pwd"
        )
        await self._store.set_password(phone, await self._passwords.hash(pwd))
        # Whoever else held the old password is logged out; the device changing it stays in.
        ended = await self._store.end_sessions(
            phone, self._wall(), "password_changed", keep=session.token_hash
        )
        await self._ended(phone, ended, spare_device=session.device_id)
        return account.name or ""

    async def add_info(self, uuid: str, info: Any, proof: Proof) -> None:
        phone = normalise_phone(uuid)
        if await self._store.get(phone) is None:
            raise Failed("account_not_exist")
        await self.authorize(uuid, proof, DEVICE_AND_POLL)
        await self._store.set_info(phone, info)

    async def register_push(
        self, uuid: str, proof: Proof, provider: str, channel: str, user_id: str
    ) -> None:
        """Where the device's events go: as sensitive as the events (call invitations)."""
        session = await self.authorize(uuid, proof, POLL)
        await self._store.register_push(
            session.uuid, session.device_id, provider, channel, user_id, self._wall()
        )
