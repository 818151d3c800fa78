"""Server transactions: INVITE (RFC 3261 17.2.1, with RFC 6026) and non-INVITE (17.2.2).

Theory of operation. The first ``receive_request(request, now)`` reports RequestReceived (an
INVITE also gets an immediate 100 Trying, so the client stops retransmitting). Retransmitted
requests are answered with the last response sent and never reported again. The TU answers
with ``send_response(response, now)``. On an unreliable transport a non-2xx final response to
an INVITE is retransmitted by timer G until the ACK arrives; timer H gives up with
TransactionTimedOut. Every path ends in TransactionTerminated.

INVITE:      Proceeding --2xx--> Accepted --L--> Terminated
             Proceeding --300-699--> Completed --ACK--> Confirmed --I--> Terminated
non-INVITE:  Trying --1xx--> Proceeding --final--> Completed --J--> Terminated
"""

from lwork.sip.builders import create_response
from lwork.sip.events import AckReceived, RequestReceived
from lwork.sip.matching import server_key
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.transaction import DEFAULT_TIMERS, Address, TimerSettings, Transaction
from lwork.sip.transaction import TransactionState as State


class ServerTransaction(Transaction):
    """Base of both server transactions: remembers the last response for retransmissions."""

    def __init__(
        self,
        request: SipRequest,
        peer: Address,
        *,
        reliable: bool,
        timers: TimerSettings = DEFAULT_TIMERS,
    ) -> None:
        super().__init__(server_key(request), peer, reliable=reliable, timers=timers)
        self.request = request
        self.last_response: SipResponse | None = None
        self._interval = timers.t1

    def receive_request(self, request: SipRequest, now: float) -> None:
        raise NotImplementedError

    def send_response(self, response: SipResponse, now: float) -> None:
        raise NotImplementedError

    def _respond(self, response: SipResponse) -> None:
        self.last_response = response
        self._send(response)

    def _resend_last_response(self) -> None:
        if self.last_response is not None:
            self._send(self.last_response)


class InviteServerTransaction(ServerTransaction):
    """Server side of an INVITE; absorbs the ACK of a non-2xx final response."""

    def receive_request(self, request: SipRequest, now: float) -> None:
        if self.state is State.INITIAL:
            self.state = State.PROCEEDING
            self._emit(RequestReceived(self.key, request))
            if self.last_response is None:
                self._respond(create_response(request, 100))
        elif request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._cancel("G", "H")
                self._wait_then_terminate("I", 0 if self.reliable else self.timers.t4, now)
            elif self.state is State.ACCEPTED:
                self._emit(AckReceived(request))
        elif self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend_last_response()

    def send_response(self, response: SipResponse, now: float) -> None:
        code = response.status_code
        if self.state is State.ACCEPTED and 200 <= code < 300:
            self._send(response)  # the TU retransmits its 2xx until the ACK comes
            return
        self._require(State.PROCEEDING)
        self._respond(response)
        if code < 200:
            return
        if code < 300:
            self.state = State.ACCEPTED
            self._arm("L", now + 64 * self.timers.t1)
            return
        self.state = State.COMPLETED
        if not self.reliable:
            self._arm("G", now + self._interval)
        self._arm("H", now + 64 * self.timers.t1)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "G" and self.state is State.COMPLETED:
            self._resend_last_response()
            self._interval = min(2 * self._interval, self.timers.t2)
            self._arm("G", now + self._interval)
        elif name == "H" and self.state is State.COMPLETED:
            self._time_out("H")
        elif name in ("I", "L"):
            self._terminate()


class NonInviteServerTransaction(ServerTransaction):
    """Server side of any request but INVITE and ACK."""

    def receive_request(self, request: SipRequest, now: float) -> None:
        if self.state is State.INITIAL:
            self.state = State.TRYING
            self._emit(RequestReceived(self.key, request))
        elif self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend_last_response()

    def send_response(self, response: SipResponse, now: float) -> None:
        self._require(State.TRYING, State.PROCEEDING)
        self._respond(response)
        if response.status_code < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._wait_then_terminate("J", 0 if self.reliable else 64 * self.timers.t1, now)

    def _on_timer(self, name: str, now: float) -> None:
        if name == "J":
            self._terminate()
