"""Search queries rendered for PostgreSQL's to_tsquery('simple', ...)."""

from __future__ import annotations

from relay.storage.records import SearchQuery, Term, can_match


def _ts_term(term: Term) -> str:
    lexemes = " <-> ".join(
        "'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in term.words
    )
    lexemes = f"({lexemes})" if len(term.words) > 1 else lexemes
    return f"!{lexemes}" if term.negated else lexemes


def tsquery(query: SearchQuery) -> str | None:
    """A to_tsquery('simple', ...) expression, or None when nothing could match."""
    if not can_match(query):
        return None
    return " & ".join("(" + " | ".join(_ts_term(t) for t in group) + ")" for group in query)
