"""The NMSI command grammar: ``CMD:KEY=value,KEY="value",…;`` → a typed command. No I/O.

Keys are case-insensitive (kept lower-cased); every value is a string, quoted or not (the
original turned unquoted digits into integers, which then never matched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_KEY = re.compile(r"[A-Za-z0-9_]{1,32}")
_MAX_FIELDS = 32


class CommandError(ValueError):
    """The text is not a command of the grammar. Its message is an ack's DESC: plain words,
    no commas, semicolons or quotes."""


@dataclass(frozen=True, slots=True)
class RawCommand:
    name: str
    """Upper-cased."""
    fields: dict[str, str]


def parse_raw(text: str) -> RawCommand:
    text = text.strip().rstrip("\x00").strip()
    if not text.endswith(";"):
        raise CommandError("no closing semicolon")
    text = text[:-1]
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise CommandError("bad command name")
    fields: dict[str, str] = {}
    position = 0
    while colon and position < len(rest):
        key_end = rest.find("=", position)
        if key_end < 0:
            raise CommandError("a field without an equals sign")
        key = rest[position:key_end].strip()
        if not _KEY.fullmatch(key):
            raise CommandError("bad field name")
        value, position = _value(rest, key_end + 1)
        if len(fields) >= _MAX_FIELDS:
            raise CommandError("too many fields")
        fields[key.lower()] = value
        if position < len(rest):
            if rest[position] != ",":
                raise CommandError("fields are separated by commas")
            position += 1
            if position == len(rest):
                raise CommandError("a trailing comma")
    return RawCommand(name.upper(), fields)


def _value(rest: str, start: int) -> tuple[str, int]:
    """The value starting at ``start`` and where the text after it begins."""
    i = start
    while i < len(rest) and rest[i] == " ":
        i += 1
    if i < len(rest) and rest[i] == '"':
        end = rest.find('"', i + 1)
        if end < 0:
            raise CommandError("an unclosed quote")
        after = end + 1
        while after < len(rest) and rest[after] == " ":
            after += 1
        return rest[i + 1 : end], after
    end = rest.find(",", i)
    end = len(rest) if end < 0 else end
    value = rest[i:end].strip()
    if '"' in value:
        raise CommandError("a stray quote")
    return value, end


@dataclass(frozen=True, slots=True)
class Login:
    stage: int
    """1: ``90000``; 2: ``2100``."""
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Logout:
    stage: int
    """1: ``90001`` (both stages end); 2: ``2101`` (back to after the first)."""


@dataclass(frozen=True, slots=True)
class CreateSdn:
    sdn: str
    das: str


@dataclass(frozen=True, slots=True)
class CreateSipregUser:
    sdn: str
    password: str


@dataclass(frozen=True, slots=True)
class DeleteSdn:
    sdn: str


@dataclass(frozen=True, slots=True)
class ModifySubAttr:
    sdn: str
    not_in_use: bool


@dataclass(frozen=True, slots=True)
class BindNumber:
    account: str
    number: str


@dataclass(frozen=True, slots=True)
class UnbindNumber:
    number: str
    account: str
    """Empty when only the number is given (as the original's peers send it)."""


@dataclass(frozen=True, slots=True)
class Unhandled:
    name: str


Command = (
    Login | Logout | CreateSdn | CreateSipregUser | DeleteSdn | ModifySubAttr | BindNumber
    | UnbindNumber | Unhandled
)  # fmt: skip


def parse_command(text: str) -> tuple[str, Command]:
    """The command's name (for its ack) and the command; CommandError if it is no command."""
    raw = parse_raw(text)
    f = raw.fields
    sdn = f.get("sdn1", f.get("sdn", ""))  # the oldest peers sent SDN where later ones send SDN1
    command: Command
    match raw.name:
        case "90000" | "2100":
            command = Login(1 if raw.name == "90000" else 2, f.get("1", ""), f.get("2", ""))
        case "90001" | "2101":
            command = Logout(1 if raw.name == "90001" else 2)
        case "CREATE_SDN":
            command = CreateSdn(sdn, f.get("das", ""))
        case "CREATE_SIPREG_USER":
            command = CreateSipregUser(f.get("sdn", sdn), f.get("password", ""))
        case "DELETE_SDN":
            command = DeleteSdn(sdn)
        case "MODIFY_SUB_ATTR":
            command = ModifySubAttr(sdn, f.get("notinuse", "0").strip() == "1")
        case "CREATE_MSN" | "CREATE_MIXSUB":
            command = BindNumber(f.get("num", ""), f.get("subnum", ""))
        case "DELETE_MSN" | "DELETE_MIXSUB":
            command = UnbindNumber(f.get("subnum", ""), f.get("num", ""))
        case _:
            command = Unhandled(raw.name)
    return raw.name, command
