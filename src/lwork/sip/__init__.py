"""Sans-IO SIP core: messages, SDP, transactions, dialogs and digest authentication.

Every module here is pure: no sockets, no asyncio, no clock. Time enters as ``now``.
"""
