"""Small lexical helpers shared by the SIP and URI parsers (RFC 3261 section 25)."""

import re

Params = tuple[tuple[str, str | None], ...]

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def require_token(text: str, what: str) -> str:
    if not is_token(text):
        raise ValueError(f"invalid {what}: {text!r}")
    return text


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on ``separator`` except inside quoted strings and <...> brackets.

    Comma-folded header values ("Via: a, b") and parameter lists both contain separators
    inside quoted strings and URIs, so a plain str.split would cut them apart.
    """
    parts: list[str] = []
    current: list[str] = []
    in_quotes = False
    in_angle = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif not in_quotes and char == "<":
            in_angle = True
        elif not in_quotes and char == ">":
            in_angle = False
        elif char == separator and not in_quotes and not in_angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if in_quotes:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


def parse_params(text: str) -> Params:
    """Parse ``;name[=value]`` pairs; ``text`` is what follows the first ';'."""
    if not text:
        return ()
    params: list[tuple[str, str | None]] = []
    for raw in split_outside_quotes(text, ";"):
        name, sep, value = raw.partition("=")
        name = name.strip()
        require_token(name, "parameter name")
        if not sep:
            params.append((name, None))
            continue
        value = value.strip()
        if not value or (not value.startswith('"') and any(c in value for c in ' \t"<>')):
            raise ValueError(f"invalid value for parameter {name!r}")
        if value.startswith('"') and (len(value) < 2 or not value.endswith('"')):
            raise ValueError(f"invalid quoted value for parameter {name!r}")
        params.append((name, value))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def get_param(params: Params, name: str) -> str | None:
    """Value of the first parameter called ``name`` (case-insensitive); '' for a bare flag."""
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return "" if value is None else value
    return None


def has_param(params: Params, name: str) -> bool:
    lowered = name.lower()
    return any(key.lower() == lowered for key, _ in params)


def replace_param(params: Params, name: str, value: str | None) -> Params:
    """Set ``name`` to ``value``, keeping the position of an existing parameter."""
    lowered = name.lower()
    if not has_param(params, name):
        return (*params, (name, value))
    return tuple((key, value) if key.lower() == lowered else (key, old) for key, old in params)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
