"""Toll-fraud controls in front of every SIP leg to a phone number and every SMS code: allowed
and denied destinations, the callback's own-number rule, daily spend caps and velocity alarms.

Pure policy (``prefixes``, ``limits``, ``velocity``, ``defaults``) is kept apart from the
asyncio/database adapter (``store``, ``service``) and the operator's commands (``operator``).
"""
