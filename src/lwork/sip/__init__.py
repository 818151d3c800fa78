"""Sans-IO SIP core: messages, SDP, transactions, dialogs and digest authentication.

Every module directly in this package is pure: no sockets, no asyncio, no clock. Time enters as
``now``. The trunk user agent that puts this core on sockets lives in ``lwork.sip.trunk``.
"""
