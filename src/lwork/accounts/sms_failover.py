"""Failover between two SMS providers: the second is asked only when the first fails in a way
another provider may not (``SmsError.temporary``); a refused number is refused everywhere."""

from __future__ import annotations

import logging

from lwork.accounts.sms import SmsError, SmsProvider

log = logging.getLogger("lwork.sms")


class FailoverSmsProvider:
    def __init__(self, primary: SmsProvider, fallback: SmsProvider) -> None:
        self._primary = primary
        self._fallback = fallback

    async def send(self, phone: str, text: str, code: str) -> None:
        try:
            await self._primary.send(phone, text, code)
        except SmsError as exc:
            if not exc.temporary:
                raise
            # The message names the vendor's error code only, never the code we send.
            log.warning("SMS provider failed (%s); trying the fallback provider", exc)
            await self._fallback.send(phone, text, code)
