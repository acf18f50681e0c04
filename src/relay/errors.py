"""Relay's domain errors: what went wrong, in words a caller may read.

They carry no HTTP status: `relay.web.errors` maps each class to its status
and code in one place, as it does for the backends' and the store's errors.
Each concern raises its own subclasses (clients, limits, chat); the ones every
concern shares live here.
"""

from __future__ import annotations


class RelayError(Exception):
    """A failure Relay reports on purpose; `message` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RelayError):
    """No such resource, or not this client's: both answer the same."""

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"The {what} does not exist.")
        self.what = what


class InvalidInput(RelayError):
    """A value the caller sent that Relay refuses; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__("The request is not valid.")
        self.field = field
        self.reason = reason
