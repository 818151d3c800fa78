"""Registration with the carrier's registrar and OPTIONS keep-alive towards its proxy.

Theory of operation. ``Registration.start()`` sends REGISTER; a 401/407 is answered once with
digest credentials for whatever realm the registrar names; a 2xx schedules the refresh at 80 %
of the expiry the registrar granted (Contact ``expires`` or Expires header); a failure or a
timeout retries after ``register_retry_s``. Each cycle starts without credentials, so a
changed nonce or realm never needs special handling. ``KeepAlive`` sends OPTIONS every
``options_interval_s`` and records whether the proxy answered (any response counts).
"""

import logging
from collections.abc import Callable

from lwork.sip.auth import (
    DigestChallenge,
    answer_challenge,
    authorization_header_name,
    challenge_header_name,
)
from lwork.sip.builders import create_request
from lwork.sip.headers import NameAddr
from lwork.sip.ids import new_branch, new_call_id, new_cnonce, new_tag
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.transaction import Address
from lwork.sip.trunk.legs import Cancellable, LegHost
from lwork.sip.trunk.limits import TrunkStats
from lwork.sip.uri import SipUri, parse_host_port

log = logging.getLogger(__name__)


class Registration:
    """Keeps one binding alive at the registrar named in the trunk configuration."""

    def __init__(self, host: LegHost, stats: TrunkStats) -> None:
        config = host.config
        if config.registrar is None or config.username is None:
            raise ValueError("registration needs a registrar and a username")
        registrar_host, registrar_port = parse_host_port(config.registrar)
        self._host = host
        self._stats = stats
        self._registrar_uri = SipUri(registrar_host, port=registrar_port)
        self._aor = NameAddr(SipUri(config.request_domain, config.username))
        self._peer: Address = (registrar_host, registrar_port or 5060)
        self._call_id = new_call_id(config.request_domain)
        self._tag = new_tag()
        self._cseq = 0
        self._authenticated = False
        self._timer: Cancellable | None = None
        self._stopped = False
        self.expires_granted: int | None = None

    def start(self) -> None:
        self._authenticated = False
        self._send(None)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, authorization: tuple[str, str] | None) -> None:
        config = self._host.config
        self._cseq += 1
        extra = [("Expires", str(config.register_expires)), ("User-Agent", config.user_agent)]
        if authorization is not None:
            extra.append(authorization)
        request = create_request(
            "REGISTER",
            self._registrar_uri,
            via=self._host.sent_by.via(new_branch()),
            from_addr=self._aor.with_tag(self._tag),
            to_addr=self._aor,
            call_id=self._call_id,
            cseq=self._cseq,
            contact=self._host.contact,
            extra_headers=extra,
        )
        self._host.send_request(request, self._peer, lambda r: self._on_response(request, r))

    def _on_response(self, request: SipRequest, response: SipResponse | None) -> None:
        if self._stopped or (response is not None and response.status_code < 200):
            return
        if response is None:
            self._failed("timeout")
        elif response.is_success:
            self._registered(response)
        elif response.status_code in (401, 407) and not self._authenticated:
            self._answer_challenge(request, response)
        else:
            self._failed(f"{response.status_code} {response.reason}")

    def _answer_challenge(self, request: SipRequest, response: SipResponse) -> None:
        config = self._host.config
        try:
            challenge = DigestChallenge.parse(
                response.headers.get(challenge_header_name(response.status_code)) or ""
            )
            credentials = answer_challenge(
                challenge,
                username=config.username or "",
                password=config.password or "",
                method="REGISTER",
                uri=str(request.uri),
                cnonce=new_cnonce(),
            )
        except ValueError as exc:
            self._failed(f"unusable challenge: {exc}")
            return
        self._authenticated = True
        self._send((authorization_header_name(response.status_code), str(credentials)))

    def _registered(self, response: SipResponse) -> None:
        expires = self._granted_expires(response)
        self.expires_granted = expires
        self._stats.registered = True
        self._stats.registrations += 1
        self._schedule(max(1.0, 0.8 * expires), self.start)

    def _granted_expires(self, response: SipResponse) -> int:
        default = self._host.config.register_expires
        try:
            ours = str(self._host.contact.uri)
            for contact in response.contacts:
                value = contact.param("expires")
                if str(contact.uri) == ours and value and value.isdigit():
                    return int(value)
        except ValueError:
            pass
        header = (response.headers.get("Expires") or "").strip()
        return int(header) if header.isdigit() else default

    def _failed(self, why: str) -> None:
        log.warning("registration with %s failed: %s", self._registrar_uri, why)
        self._stats.registered = False
        self._stats.registration_failures += 1
        self._schedule(self._host.config.register_retry_s, self.start)

    def _schedule(self, delay: float, callback: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._host.call_later(delay, callback)


class KeepAlive:
    """OPTIONS to the proxy every ``options_interval_s``; ``proxy_alive`` is the last outcome."""

    def __init__(self, host: LegHost, stats: TrunkStats) -> None:
        self._host = host
        self._stats = stats
        self._timer: Cancellable | None = None
        self._cseq = 0
        self.proxy_alive: bool | None = None

    def start(self) -> None:
        if self._host.config.options_interval_s > 0:
            self._timer = self._host.call_later(self._host.config.options_interval_s, self._ping)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _ping(self) -> None:
        config = self._host.config
        self._cseq += 1
        domain = config.request_domain
        request = create_request(
            "OPTIONS",
            SipUri(config.proxy_host, port=config.proxy_port),
            via=self._host.sent_by.via(new_branch()),
            from_addr=NameAddr(SipUri(domain, config.username or "lwork")).with_tag(new_tag()),
            to_addr=NameAddr(SipUri(config.proxy_host, port=config.proxy_port)),
            call_id=new_call_id(domain),
            cseq=self._cseq,
            extra_headers=[("User-Agent", config.user_agent)],
        )
        self._host.send_request(request, config.proxy_address, self._on_response)
        self._timer = self._host.call_later(config.options_interval_s, self._ping)

    def _on_response(self, response: SipResponse | None) -> None:
        if response is not None and response.status_code < 200:
            return
        self.proxy_alive = response is not None
        if response is None:
            self._stats.keepalive_failures += 1
