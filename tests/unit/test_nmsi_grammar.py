"""NMSI frames and command text, without sockets: what the decoder and grammar make of bytes."""

from __future__ import annotations

import pytest

from lwork.boss.nmsi.commands import (
    BindNumber,
    CommandError,
    CreateSdn,
    CreateSipregUser,
    DeleteSdn,
    Login,
    Logout,
    ModifySubAttr,
    UnbindNumber,
    Unhandled,
    parse_command,
    parse_raw,
)  # fmt: skip
from lwork.boss.nmsi.framing import (
    BadFrame,
    CommandFrame,
    FrameDecoder,
    Heartbeat,
    ack_text,
    encode_ack,
)  # fmt: skip

MAGIC = bytes.fromhex("aa55aa55")


def command_frame(text: bytes, length: int | None = None, version: int = 1) -> bytes:
    total = 39 + len(text) if length is None else length
    return (MAGIC + b"\x01" + total.to_bytes(4, "big") + version.to_bytes(4, "big")
            + (42).to_bytes(8, "big") + (9).to_bytes(4, "big") + bytes(4) + b"\x00"
            + b"\x00\x01" + bytes(7) + text)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('90000:1="oss",2="pw";', Login(1, "oss", "pw")),
        ("2100:1=oss,2=123;", Login(2, "oss", "123")),
        ("90001;", Logout(1)),
        ("2101;", Logout(2)),
        ("CREATE_SDN:SDN1=02150001234,DAS=105;", CreateSdn("02150001234", "105")),
        ('CREATE_SDN:SDN="0215",DAS=1;', CreateSdn("0215", "1")),
        ('create_sipreg_user:sdn="0215",password=0123;', CreateSipregUser("0215", "0123")),
        ("DELETE_SDN:SDN1=0215;", DeleteSdn("0215")),
        ("MODIFY_SUB_ATTR:SDN1=0215,NOTINUSE=1;", ModifySubAttr("0215", True)),
        ('MODIFY_SUB_ATTR:SDN1=0215,NOTINUSE="0";', ModifySubAttr("0215", False)),
        ("CREATE_MSN:NUM=0215,SUBNUM=0216;", BindNumber("0215", "0216")),
        ("CREATE_MIXSUB:NUM=0215,SUBNUM=0216;", BindNumber("0215", "0216")),
        ("DELETE_MSN:SUBNUM=0216;", UnbindNumber("0216", "")),
        ("DELETE_MIXSUB:SUBNUM=0216,NUM=0215;", UnbindNumber("0216", "0215")),
        ("LST_SUB:SDN1=1;", Unhandled("LST_SUB")),
        (' CREATE_SDN : SDN1 = "a b" , DAS = 7 ;\x00', CreateSdn("a b", "7")),
    ],
)
def test_commands(text: str, expected: object) -> None:
    assert parse_command(text)[1] == expected


def test_quoted_values_keep_commas_and_semicolons() -> None:
    assert parse_raw('X:A="1,2;3",B=4;').fields == {"a": "1,2;3", "b": "4"}


@pytest.mark.parametrize(
    "text",
    ["", ";", "X", "X:A=1", "X:A;", 'X:A="1;', "X:A=1,;", "X:A=1,,B=2;", "X Y:A=1;",
     'X:A=1"2;', 'X:A="1"B;', "X:=1;", "é:A=1;", "X:" + ",".join(f"K{i}=1" for i in range(40))
     + ";"],
)  # fmt: skip
def test_not_commands(text: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(text)
    assert not set(str(refused.value)) & set(',;"')  # it becomes an ack's DESC


def test_acks_from_the_peer_are_passed_over() -> None:
    ack = MAGIC + b"\x02" + command_frame(b"x : RETN=0")[5:]
    events = FrameDecoder().feed(ack * 2000 + command_frame(b"90001;"))
    assert [type(e) for e in events] == [CommandFrame]


def test_frames_split_anywhere_and_joined() -> None:
    stream = command_frame(b"90001;") + MAGIC + b"\x03" + command_frame(b"2101;")
    decoder = FrameDecoder()
    events = [event for byte in stream for event in decoder.feed(bytes([byte]))]
    assert [type(e) for e in events] == [CommandFrame, Heartbeat, CommandFrame]
    first = events[0]
    assert isinstance(first, CommandFrame)
    assert (first.text, first.header.eid, first.header.tid) == (b"90001;", 42, 9)
    assert decoder.buffered == 0


@pytest.mark.parametrize(
    ("data", "retn", "fatal"),
    [
        (b"\xaa\x55\x00", 90024, True),
        (command_frame(b"x;", length=38), 90020, True),
        (command_frame(b"x;", length=70_000), 90020, True),
        (command_frame(b"x;", version=2), 90021, False),
        (MAGIC + b"\x07" + command_frame(b"x;")[5:], 90023, False),
    ],
)
def test_bad_frames(data: bytes, retn: int, fatal: bool) -> None:
    decoder = FrameDecoder(max_frame=65536)
    (event,) = decoder.feed(data)
    assert isinstance(event, BadFrame) and (event.retn, event.fatal) == (retn, fatal)
    if fatal:
        assert decoder.feed(command_frame(b"90001;")) == []


def test_an_ack_as_the_original_wrote_it() -> None:
    assert ack_text("DELETE_SDN", 1, "account_not_exist", 0.0) == (
        "1970-01-01 00:00:00 : DELETE_SDN : RETN=1,DESC=account_not_exist")  # fmt: skip
    ack = encode_ack("90000", 90004, None, 0.0, eid=5, tid=6)
    assert ack[:5] == MAGIC + b"\x02"
    assert int.from_bytes(ack[5:9], "big") == len(ack)
    assert (int.from_bytes(ack[13:21], "big"), int.from_bytes(ack[21:25], "big")) == (5, 6)
    assert int.from_bytes(ack[25:29], "big") == 90004
    assert ack[39:] == b"1970-01-01 00:00:00 : 90000 : RETN=90004"
