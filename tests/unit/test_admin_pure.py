"""Pure parts of the console: the string catalogue and where a sign-in may send the browser."""

from __future__ import annotations

import re
from importlib import resources

from hypothesis import given
from hypothesis import strategies as st

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


@given(st.text())
def test_a_sign_in_only_ever_leads_into_the_console(target: str) -> None:
    where = safe_next(target)
    assert where.startswith("/admin/") and "//" not in where and "\\" not in where
    assert where == target or where == "/admin/calls"
