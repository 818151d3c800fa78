"""RFC 3550 receiver statistics, pure: every input carries its arrival time.

`StreamReceiver` follows appendix A.1 (sequence validation, wrap-around, restarts), A.3 (expected
and lost packets, fraction lost per interval) and A.8 (interarrival jitter in timestamp units,
converted to milliseconds with the payload clock). `RttEstimator` computes round-trip time from
reception report blocks (LSR/DLSR, §6.4.1) against the send times of SRs the relay emitted or
forwarded, which avoids comparing two different clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from lwork.media.relay.rtcp import ReportBlock

SEQ_MOD: Final = 1 << 16
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100
_TS_MOD: Final = 1 << 32
_TS_HALF: Final = 1 << 31


class StreamReceiver:
    """Reception state for one SSRC (RFC 3550 A.1, A.3, A.8)."""

    __slots__ = (
        "ssrc",
        "clock_rate",
        "packets",
        "bytes",
        "base_seq",
        "max_seq",
        "cycles",
        "bad_seq",
        "received",
        "expected_prior",
        "received_prior",
        "jitter",
        "jitter_sum",
        "jitter_samples",
        "last_arrival",
        "last_timestamp",
        "last_interval_loss",
        "first_arrival",
    )

    def __init__(self, ssrc: int, clock_rate: int, sequence: int, now: float) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packets = 0
        self.bytes = 0
        self.bad_seq = SEQ_MOD + 1
        self.jitter = 0.0
        self.jitter_sum = 0.0
        self.jitter_samples = 0
        self.last_arrival: float | None = None
        self.last_timestamp = 0
        self.last_interval_loss = 0.0
        self.first_arrival = now
        self._init_seq(sequence)

    def _init_seq(self, sequence: int) -> None:
        self.base_seq = sequence
        self.max_seq = sequence
        self.cycles = 0
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0

    def on_packet(
        self, sequence: int, timestamp: int, size: int, now: float, timed: bool = True
    ) -> None:
        """Account one packet; `timed=False` skips jitter (telephone-events reuse timestamps).

        Called once per relayed packet, so fields used twice are read into locals once.
        """
        self.packets += 1
        self.bytes += size
        max_seq = self.max_seq
        udelta = (sequence - max_seq) % SEQ_MOD
        if udelta < MAX_DROPOUT:
            if sequence < max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = sequence
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            # A big jump: accept it only when the next packet confirms a restarted sender.
            if sequence == self.bad_seq:
                self._init_seq(sequence)
                self.last_arrival = None
            else:
                self.bad_seq = (sequence + 1) % SEQ_MOD
                return
        # else: duplicate or reordered packet, counted as received (A.3 lets loss go negative)
        self.received += 1
        if not timed:
            return
        last = self.last_arrival
        if last is not None:
            # A.8: D(i-1, i) with the timestamp difference taken as a signed 32-bit value.
            ts_delta = (timestamp - self.last_timestamp) % _TS_MOD
            if ts_delta >= _TS_HALF:
                ts_delta -= _TS_MOD
            jitter = self.jitter
            jitter += (abs((now - last) * self.clock_rate - ts_delta) - jitter) / 16.0
            self.jitter = jitter
            self.jitter_sum += jitter
            self.jitter_samples += 1
        self.last_arrival = now
        self.last_timestamp = timestamp

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3); negative when duplicates arrived."""
        return self.expected - self.received

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock_rate

    @property
    def average_jitter_ms(self) -> float:
        if not self.jitter_samples:
            return 0.0
        return self.jitter_sum / self.jitter_samples * 1000.0 / self.clock_rate

    def close_interval(self) -> int:
        """End a reporting interval; return the 8-bit fraction lost for it (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            self.last_interval_loss = 0.0
            return 0
        self.last_interval_loss = lost_interval / expected_interval
        return min(255, (lost_interval << 8) // expected_interval)

    def report_block(self, lsr: int, dlsr: int) -> ReportBlock:
        """Build a reception report about this source; closes the current interval."""
        fraction = self.close_interval()
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            cumulative_lost=self.lost,
            highest_sequence=self.extended_max & 0xFFFF_FFFF,
            jitter=int(self.jitter) & 0xFFFF_FFFF,
            lsr=lsr,
            dlsr=dlsr,
        )


@dataclass
class RttEstimator:
    """Round-trip time between the relay and one endpoint from LSR/DLSR."""

    max_pending: int = 16
    last_ms: float | None = None
    sum_ms: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        self._sent: dict[int, float] = {}

    def sr_sent(self, lsr_key: int, now: float) -> None:
        """Remember when an SR with compact NTP `lsr_key` left toward the endpoint."""
        self._sent[lsr_key] = now
        if len(self._sent) > self.max_pending:
            del self._sent[next(iter(self._sent))]

    def on_report(self, block: ReportBlock, now: float) -> float | None:
        """Return the RTT in ms if the block answers one of our SRs."""
        if block.lsr == 0:
            return None
        sent = self._sent.get(block.lsr)
        if sent is None:
            return None
        rtt_ms = (now - sent - block.dlsr / 65536.0) * 1000.0
        if rtt_ms < 0:
            # DLSR claims more hold time than elapsed: a lying or coarse peer, not a sample.
            return None
        self.last_ms = rtt_ms
        self.sum_ms += rtt_ms
        self.samples += 1
        return rtt_ms

    @property
    def average_ms(self) -> float | None:
        return self.sum_ms / self.samples if self.samples else None


@dataclass(frozen=True, slots=True)
class RemoteView:
    """What an endpoint reported (in its RR) about the stream the relay sends it."""

    fraction_lost: float
    cumulative_lost: int
    jitter_ms: float

    @classmethod
    def from_block(cls, block: ReportBlock, clock_rate: int) -> RemoteView:
        return cls(
            block.fraction_lost / 256.0, block.cumulative_lost, block.jitter * 1000.0 / clock_rate
        )
