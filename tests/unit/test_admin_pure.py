"""Pure parts of the console: the string catalogue and where a sign-in may send the browser."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from importlib import resources
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwork.admin.cdr_filter import FilterError, parse_filter
from lwork.admin.i18n import CATALOGUE, LANGS, pick, translator
from lwork.admin.web import safe_next

_USED = re.compile(r"""\bt\(\s*'([a-z_]+)'\s*\)""")


def test_every_string_a_template_shows_is_in_both_languages() -> None:
    templates = resources.files("lwork.admin") / "templates"
    used = set()
    for template in templates.iterdir():
        used |= set(_USED.findall(template.read_text()))
    used |= {"role_admin", "role_support", "hung_up", "call_gone"}  # keys built at run time
    assert used and used <= set(CATALOGUE), used - set(CATALOGUE)
    for key, texts in CATALOGUE.items():
        assert len(texts) == len(LANGS) and all(texts), key
    assert translator("en")("sign_in") == "Sign in" and translator("zh")("sign_in") == "登录"
    assert pick("en", "zh") == "en" and pick("fr", "zh") == "zh" and pick(None, "en") == "en"


@settings(deadline=None)  # a busy shared machine is not a slow parser
@given(st.text())
def test_a_sign_in_only_ever_leads_into_the_console(target: str) -> None:
    where = safe_next(target)
    assert where.startswith("/admin/") and "//" not in where and "\\" not in where
    assert where == target or where == "/admin/calls"


TODAY = dt.date(2026, 3, 10)


def test_the_records_filter() -> None:
    wanted = parse_filter({}, TODAY)
    assert (wanted.first, wanted.last) == (dt.date(2026, 3, 4), TODAY)  # the last 7 days
    wanted = parse_filter({"from": "2026-03-01", "to": "2026-03-02", "number": "+8613800000001",
                           "kind": "p2p", "end_reason": "admin_hangup",
                           "before": "1772294440.1234567~n1@@ab"}, TODAY)  # fmt: skip
    assert wanted.before == (1772294440.1234567, "n1@@ab") and wanted.kind == "p2p"
    assert "before" not in wanted.query() and "number=%2B8613800000001" in wanted.query()
    for params, field in (
        ({"from": "2026-02-30"}, "from"), ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "to"), ({"from": "2026-03-11"}, "from"),
        ({"from": "2024-01-01"}, "from"), ({"account": "<b>"}, "account"),
        ({"number": "1" * 33}, "number"), ({"kind": "call"}, "kind"),
        ({"end_reason": "a b"}, "end_reason"), ({"before": "x~y"}, "before"),
    ):  # fmt: skip
        with pytest.raises(FilterError) as refused:
            parse_filter(params, TODAY)
        assert refused.value.field == field


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["from", "to", "account", "number", "kind", "end_reason",
                                        "before", "other"]), st.text(max_size=40)))  # fmt: skip
def test_any_query_is_a_filter_or_a_named_refusal(params: dict[str, str]) -> None:
    try:
        wanted = parse_filter(params, TODAY)
    except FilterError as refused:
        assert refused.field in params
    else:
        assert wanted.first <= wanted.last and (wanted.last - wanted.first).days < 366
        assert parse_filter(dict(parse_qsl(wanted.query())), TODAY) == replace(wanted, before=None)
