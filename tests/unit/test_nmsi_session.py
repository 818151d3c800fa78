"""NMSI's session rules with the time passed in: the two logins, logouts, silence, floods."""

from __future__ import annotations

from lwork.boss.nmsi.commands import Login, Logout
from lwork.boss.nmsi.session import NmsiSession, SessionRules

RULES = SessionRules("oss", "secret", heartbeat_s=120.0)


def first(password: str = "secret") -> Login:
    return Login(1, "oss", password)


def second(password: str = "secret") -> Login:
    return Login(2, "oss", password)


def test_both_logins_in_order_admit_commands() -> None:
    session = NmsiSession(RULES, now=0.0)
    assert session.admit() == 90010
    assert session.login(second()) == 90001
    assert session.login(first()) == 0
    assert session.admit() == 90010
    assert session.login(first()) == 90002
    assert session.login(second()) == 0
    assert (session.admit(), session.logged_in) == (0, True)
    assert session.login(second()) == 90002


def test_logouts_undo_the_stages() -> None:
    session = NmsiSession(RULES, now=0.0)
    session.login(first())
    session.login(second())
    assert session.logout(Logout(2)) == 0
    assert session.admit() == 90010
    assert session.login(second()) == 0
    session.logout(Logout(1))
    assert session.login(second()) == 90001


def test_wrong_credentials_and_an_empty_configured_user() -> None:
    session = NmsiSession(RULES, now=0.0)
    assert session.login(first("nope")) == 90004
    assert session.login(Login(1, "other", "secret")) == 90004
    assert not session.closing
    assert session.login(first("again")) == 90004
    assert session.closing  # three wrong: hung up
    nobody = NmsiSession(SessionRules("", ""), now=0.0)
    assert nobody.login(Login(1, "", "")) == 90004


def test_three_silent_heartbeat_intervals_expire_the_session() -> None:
    session = NmsiSession(RULES, now=1000.0)
    assert not session.expired(1000.0 + 359.9)
    session.heartbeat(1300.0)
    assert session.deadline() == 1300.0 + 360.0
    assert not session.expired(1659.9)
    assert session.expired(1660.0)
    session.heard(1700.0)
    assert not session.expired(1800.0)


def test_a_flood_of_heartbeats_closes_but_a_steady_beat_does_not() -> None:
    steady = NmsiSession(RULES, now=0.0)
    for i in range(1000):
        steady.heartbeat(i * 0.5)
    assert not steady.closing
    flood = NmsiSession(RULES, now=0.0)
    for i in range(21):
        flood.heartbeat(5.0 + i * 0.01)
    assert flood.closing
