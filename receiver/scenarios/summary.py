"""What a scenario run reports: counts by outcome and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from receiver.scenarios.plan import PlannedRequest
from receiver.sender.base import Delivery

__all__ = ["Summary", "percentile"]


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0..1) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """The outcome of a run; `ok` when every event was acknowledged and every forgery refused."""

    planned: int
    sent: int
    """Requests sent at least once (forged twins and duplicates included)."""
    attempts: int
    """HTTP attempts, retries included."""
    acknowledged: int
    """Genuine requests answered 200."""
    duplicates_sent: int
    out_of_order: int
    """Requests sent swapped with the adjacent event of their flow."""
    retried: int
    """Genuine requests that needed more than one attempt."""
    timeouts: int
    """Attempts given up for lack of an answer."""
    failed: int
    """Genuine requests discarded after the last retry."""
    wrong_token_sent: int
    rejected_as_expected: int
    """Forged requests answered 401."""
    wrong_token_accepted: int
    """Forged requests answered 200: the receiver let a wrong token through."""
    wrong_token_other: int
    """Forged requests answered with another status, or not at all."""
    elapsed: float
    """Seconds from the first request to the last answer."""
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    """Latency percentiles over every attempt that got an answer."""

    @classmethod
    def of(
        cls,
        results: Iterable[tuple[PlannedRequest, Delivery]],
        *,
        planned: int,
        elapsed: float,
    ) -> Summary:
        """Count `results` (each planned request with its delivery)."""
        results = list(results)
        genuine = [d for p, d in results if not p.wrong_token]
        forged = [d for p, d in results if p.wrong_token]
        attempts = [a for _, d in results for a in d.attempts]
        latencies = [a.latency * 1000 for a in attempts if a.status is not None]
        return cls(
            planned=planned,
            sent=len(results),
            attempts=len(attempts),
            acknowledged=sum(d.acknowledged for d in genuine),
            duplicates_sent=sum(p.duplicate for p, _ in results),
            out_of_order=sum(p.out_of_order and not p.wrong_token for p, _ in results),
            retried=sum(d.retried > 0 for d in genuine),
            timeouts=sum(a.timed_out for a in attempts),
            failed=sum(not d.acknowledged for d in genuine),
            wrong_token_sent=len(forged),
            rejected_as_expected=sum(d.status == 401 for d in forged),
            wrong_token_accepted=sum(d.status == 200 for d in forged),
            wrong_token_other=sum(d.status not in (200, 401) for d in forged),
            elapsed=elapsed,
            latency_p50_ms=_round(percentile(latencies, 0.50)),
            latency_p95_ms=_round(percentile(latencies, 0.95)),
            latency_p99_ms=_round(percentile(latencies, 0.99)),
        )

    @property
    def ok(self) -> bool:
        """Whether the receiver acknowledged every genuine event and refused every forgery."""
        return (
            self.sent == self.planned
            and self.failed == 0
            and self.rejected_as_expected == self.wrong_token_sent
        )

    def as_dict(self) -> dict[str, Any]:
        """Every count as plain JSON-ready data, plus `ok`."""
        return {**asdict(self), "ok": self.ok}

    def render(self) -> str:
        """A few aligned lines for a terminal."""
        rate = self.sent / self.elapsed if self.elapsed > 0 else 0.0
        rows = [
            ("sent", f"{self.sent} of {self.planned} in {self.elapsed:.2f} s ({rate:.1f}/s)"),
            ("acknowledged", str(self.acknowledged)),
            ("duplicates sent", str(self.duplicates_sent)),
            ("out of order", str(self.out_of_order)),
            ("retried", f"{self.retried} ({self.attempts} attempts, {self.timeouts} timeouts)"),
            ("failed", str(self.failed)),
            (
                "rejected as expected",
                f"{self.rejected_as_expected} of {self.wrong_token_sent} wrong-token requests",
            ),
        ]
        if self.wrong_token_accepted:
            rows.append(("WRONG TOKEN ACCEPTED", str(self.wrong_token_accepted)))
        if self.wrong_token_other:
            rows.append(("wrong token, not 401", str(self.wrong_token_other)))
        rows.append(
            (
                "latency ms",
                f"p50 {_ms(self.latency_p50_ms)}  p95 {_ms(self.latency_p95_ms)}  "
                f"p99 {_ms(self.latency_p99_ms)}",
            )
        )
        width = max(len(label) for label, _ in rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
