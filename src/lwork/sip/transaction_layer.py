"""The transaction layer: matches messages to transactions and runs all of their timers.

The transport adapter feeds every parsed message in with its peer address and arrival time,
then drains ``messages_to_send()`` and ``next_event()`` and re-arms one timer at
``get_timer()``. Requests and responses that belong to no transaction are reported as events
(AckReceived for the ACK of a 2xx, StrayResponseReceived for late 2xx retransmissions).
"""

import heapq
import itertools
from collections import deque

from lwork.sip.client_transaction import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from lwork.sip.events import AckReceived, SipEvent, StrayResponseReceived
from lwork.sip.matching import TransactionKey, client_key, server_key
from lwork.sip.message import SipRequest, SipResponse
from lwork.sip.server_transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)
from lwork.sip.transaction import (
    DEFAULT_TIMERS,
    Address,
    OutgoingMessage,
    TimerSettings,
    Transaction,
    TransactionStateError,
)


class TransactionLayer:
    """All live client and server transactions of one SIP endpoint."""

    def __init__(self, timers: TimerSettings = DEFAULT_TIMERS) -> None:
        self._timers = timers
        self._clients: dict[TransactionKey, ClientTransaction] = {}
        self._servers: dict[TransactionKey, ServerTransaction] = {}
        self._outbox: list[OutgoingMessage] = []
        self._events: deque[SipEvent] = deque()
        # Deadlines of all transactions, pushed whenever one changes; entries whose transaction
        # has moved on are skipped when they surface. Finished transactions linger in their
        # wait timers (D, J, K: up to 32 s), so at 100 calls/s a scan of every transaction per
        # message would cost thousands of steps; the heap costs O(log n).
        self._deadlines: list[tuple[float, int, Transaction]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    def send_request(
        self, request: SipRequest, peer: Address, *, reliable: bool, now: float
    ) -> TransactionKey | None:
        """Start a client transaction; an ACK (for a 2xx) is sent without one and gives None."""
        if request.method == "ACK":
            self._outbox.append(OutgoingMessage(request, peer))
            return None
        key = client_key(request)
        if key in self._clients:
            raise TransactionStateError(f"branch {key.branch} already in use")
        kind: type[ClientTransaction] = (
            InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        )
        transaction = kind(request, peer, reliable=reliable, timers=self._timers)
        self._clients[key] = transaction
        transaction.send_request(now)
        self._collect(transaction)
        return key

    def receive_response(self, response: SipResponse, now: float) -> None:
        """Raises ValueError for a response whose top Via has no branch."""
        transaction = self._clients.get(client_key(response))
        if transaction is None:
            self._events.append(StrayResponseReceived(response))
            return
        transaction.receive_response(response, now)
        self._collect(transaction)

    def receive_request(
        self, request: SipRequest, peer: Address, *, reliable: bool, now: float
    ) -> None:
        """Raises ValueError for a request whose top Via has no branch."""
        key = server_key(request)
        transaction = self._servers.get(key)
        if transaction is None:
            if request.method == "ACK":
                self._events.append(AckReceived(request))
                return
            kind: type[ServerTransaction] = (
                InviteServerTransaction
                if request.method == "INVITE"
                else NonInviteServerTransaction
            )
            transaction = kind(request, peer, reliable=reliable, timers=self._timers)
            self._servers[key] = transaction
        transaction.receive_request(request, now)
        self._collect(transaction)

    def send_response(self, response: SipResponse, now: float) -> None:
        transaction = self._servers.get(server_key(response))
        if transaction is None:
            raise TransactionStateError("no server transaction for this response")
        transaction.send_response(response, now)
        self._collect(transaction)

    def client_transaction(self, key: TransactionKey) -> ClientTransaction | None:
        return self._clients.get(key)

    def server_transaction(self, key: TransactionKey) -> ServerTransaction | None:
        return self._servers.get(key)

    def get_timer(self) -> float | None:
        while self._deadlines:
            deadline, _, transaction = self._deadlines[0]
            if self._current(deadline, transaction):
                return deadline
            heapq.heappop(self._deadlines)
        return None

    def handle_timer(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, transaction = heapq.heappop(self._deadlines)
            if self._current(deadline, transaction):
                transaction.handle_timer(now)
                self._collect(transaction)

    def _current(self, deadline: float, transaction: Transaction) -> bool:
        """Is this heap entry still the transaction's next deadline?"""
        if transaction.is_terminated or transaction.get_timer() != deadline:
            return False
        table: dict[TransactionKey, ClientTransaction] | dict[TransactionKey, ServerTransaction]
        table = self._clients if isinstance(transaction, ClientTransaction) else self._servers
        return table.get(transaction.key) is transaction

    def messages_to_send(self) -> list[OutgoingMessage]:
        messages, self._outbox = self._outbox, []
        return messages

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def _collect(self, transaction: Transaction) -> None:
        self._outbox.extend(transaction.messages_to_send())
        while (event := transaction.next_event()) is not None:
            self._events.append(event)
        deadline = transaction.get_timer()
        if deadline is not None and not transaction.is_terminated:
            heapq.heappush(self._deadlines, (deadline, next(self._sequence), transaction))
        if transaction.is_terminated:
            table: dict[TransactionKey, ClientTransaction] | dict[TransactionKey, ServerTransaction]
            table = self._clients if isinstance(transaction, ClientTransaction) else self._servers
            table.pop(transaction.key, None)
