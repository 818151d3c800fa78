"""The SIP trunk user agent: lwork's calls to the carrier and the carrier's calls to lwork.

Only ``transport`` (asyncio sockets) and ``user_agent`` (the ``Trunk``, which runs the legs'
timers on the loop) do I/O; the legs, registration, admission limits and configuration are
sans-IO like the core in ``lwork.sip``. ``wiring`` builds the trunk from settings and adapts it
to the SIP legs the call services dial through.
"""
