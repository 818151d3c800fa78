"""One NMSI connection's rules: the two-stage login, heartbeats, when to hang up. No I/O;
the time is passed in (monotonic seconds)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from lwork.boss.nmsi.commands import Login, Logout

OK = 0
WRONG_CREDENTIALS = 90004
SECOND_BEFORE_FIRST = 90001
REPEATED_LOGIN = 90002
NOT_LOGGED_IN = 90010

MISSED_HEARTBEATS = 3
"""Silent for this many heartbeat intervals: the peer is gone (the original never hung up)."""


@dataclass(frozen=True, slots=True)
class SessionRules:
    user: str
    password: str
    heartbeat_s: float = 120.0
    max_failed_logins: int = 3
    """Wrong credentials this many times: the connection is closed (no guessing at line rate)."""
    heartbeats_per_s: int = 20
    """More heartbeats than this within one second is a flood: the connection is closed."""


class NmsiSession:
    def __init__(self, rules: SessionRules, now: float) -> None:
        self._rules = rules
        self._stage = 0
        self._last_heard = now
        self._failed_logins = 0
        self._beat_second = int(now)
        self._beats_this_second = 0
        self.closing = False
        """Set when the session wants the connection closed (after its last answer)."""

    @property
    def logged_in(self) -> bool:
        return self._stage == 2

    def heard(self, now: float) -> None:
        """Any bytes from the peer show it is alive."""
        self._last_heard = now

    def heartbeat(self, now: float) -> None:
        self.heard(now)
        second = int(now)
        if second != self._beat_second:
            self._beat_second, self._beats_this_second = second, 0
        self._beats_this_second += 1
        if self._beats_this_second > self._rules.heartbeats_per_s:
            self.closing = True

    def deadline(self) -> float:
        """When the peer, silent until then, is taken for gone."""
        return self._last_heard + MISSED_HEARTBEATS * self._rules.heartbeat_s

    def expired(self, now: float) -> bool:
        return now >= self.deadline()

    def login(self, command: Login) -> int:
        """The RETN for a ``90000`` (stage 1) or ``2100`` (stage 2)."""
        if command.stage == 1 and self._stage >= 1:
            return REPEATED_LOGIN
        if command.stage == 2 and self._stage == 0:
            return SECOND_BEFORE_FIRST
        if command.stage == 2 and self._stage == 2:
            return REPEATED_LOGIN
        if not self._matches(command):
            self._failed_logins += 1
            if self._failed_logins >= self._rules.max_failed_logins:
                self.closing = True
            return WRONG_CREDENTIALS
        self._stage = command.stage
        return OK

    def logout(self, command: Logout) -> int:
        self._stage = 0 if command.stage == 1 else min(self._stage, 1)
        return OK

    def admit(self) -> int:
        """The RETN for any other command: OK once both logins are done."""
        return OK if self.logged_in else NOT_LOGGED_IN

    def _matches(self, command: Login) -> bool:
        # Both compared whatever the first gives, in constant time: no timing tells which.
        user = hmac.compare_digest(command.user.encode(), self._rules.user.encode())
        password = hmac.compare_digest(command.password.encode(), self._rules.password.encode())
        return bool(self._rules.user) and user and password
