"""NMSI, the original's TCP provisioning protocol (``original-behavior.md`` §10): framing,
command grammar and session rules without I/O, and the asyncio server that runs them."""
