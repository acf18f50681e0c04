"""What a rate limit says about one request, and the refusal it raises."""

from __future__ import annotations

from dataclasses import dataclass

from relay.errors import RelayError


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a request frees up


class RateLimited(RelayError):
    """Refused by a limit; `decision` says when to come back."""

    def __init__(self, decision: Decision, message: str) -> None:
        super().__init__(message)
        self.decision = decision

    @property
    def retry_after(self) -> int:
        return max(1, self.decision.reset_seconds)
