"""The faults a ``MirrorServer`` can inject: what each is, and which requests get one.

Faults (error statuses, connection resets, truncated bodies, slow answers, placeholders,
garbage and altered images) are planned per path or drawn at random, reproducibly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FAULT_KINDS = ("status", "reset", "truncate", "slow", "placeholder", "garbage", "md5_mismatch")

RANDOM_SLOW_DELAY = 1.0
"""Seconds a random "slow" fault waits (planned ones say their own ``delay``)."""

_RANDOM_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server for one request."""

    kind: str  # one of FAULT_KINDS
    status: int = 500  # for kind="status"
    delay: float = 0.0  # for kind="slow": seconds to sleep before sending anything

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")


@dataclass
class FaultPlan:
    """Which requests misbehave, and how.

    ``per_path`` maps a URL path to the faults of its successive requests, consumed in
    order; once used up the path is served normally. ``rate`` is the probability of a
    random fault for each request of an image path (``.jpg``/``.jpeg``/``.png``, not the
    placeholder); the draw depends only on ``seed``, the path and how many times that path
    was requested since the plan was set, so it is reproducible whatever the thread
    interleaving. ``latency`` is added before every response.
    """

    per_path: dict[str, list[Fault]] = field(default_factory=dict)
    rate: float = 0.0
    kinds: tuple[str, ...] = ("status", "reset", "truncate")
    seed: int = 0
    latency: float = 0.0

    def random_fault(self, path: str, n: int) -> Fault | None:
        """The random fault (or None) of the ``n``-th request (from 0) of image ``path``."""
        if self.rate > 0 and self.kinds:
            rng = random.Random(f"{self.seed}:{path}:{n}")
            if rng.random() < self.rate:
                kind = rng.choice(self.kinds)
                status = rng.choice(_RANDOM_STATUSES) if kind == "status" else 500
                return Fault(kind, status=status, delay=RANDOM_SLOW_DELAY)
        return None
