"""Opaque pagination cursors: clients pass them back, never build them."""

from __future__ import annotations

import base64

from relay.errors import InvalidInput

# Positions are 64-bit database integers (seq, offset); anything larger is not ours.
MAX_POSITION = 2**63 - 1


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, field: str = "before") -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("p") and text[1:].isascii() and text[1:].isdigit():
            position = int(text[1:])
            if position <= MAX_POSITION:
                return position
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidInput(field, "This cursor is not one Relay gave out.")
