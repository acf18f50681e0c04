"""Turn any user text into a safe full-text query, the same way for both stores.

The syntax is web-search style, as PostgreSQL's websearch_to_tsquery reads it:
words are ANDed, `"quoted words"` are a phrase, `OR` between two terms
alternates them, and `-term` excludes. Every word reaches the engine as a
quoted literal, so operators of FTS5 or tsquery in the text are only words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(r'(-)?"([^"]*)"?|(\S+)')
WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]  # one word, or several for a phrase
    negated: bool = False


# A query is an AND of groups; each group is an OR of terms.
Query = list[list[Term]]


def parse(text: str) -> Query:
    groups: Query = []
    pending_or = False
    for match in TOKEN.finditer(text):
        minus, phrase, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            pending_or = bool(groups)
            continue
        # `-word` and `-"a phrase"` exclude.
        negated = minus is not None if phrase is not None else bare.startswith("-")
        raw = phrase if phrase is not None else bare.lstrip("-")
        words = tuple(w.lower() for w in WORD.findall(raw))
        if not words:
            continue
        term = Term(words, negated)
        if pending_or and not negated and all(not t.negated for t in groups[-1]):
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    return groups


def _positive(query: Query) -> bool:
    return any(not term.negated for group in query for term in group)


def _fts5_term(term: Term) -> str:
    return '"' + " ".join(term.words).replace('"', '""') + '"'


def fts5_query(text: str) -> str | None:
    """An FTS5 MATCH expression, or None when nothing could match."""
    query = parse(text)
    if not _positive(query):
        return None
    included = [g for g in query if not g[0].negated]
    excluded = [g[0] for g in query if g[0].negated]
    expression = " AND ".join(
        "(" + " OR ".join(_fts5_term(t) for t in group) + ")" for group in included
    )
    for term in excluded:
        expression += f" NOT {_fts5_term(term)}"
    return expression


def _ts_term(term: Term) -> str:
    lexemes = " <-> ".join(
        "'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in term.words
    )
    lexemes = f"({lexemes})" if len(term.words) > 1 else lexemes
    return f"!{lexemes}" if term.negated else lexemes


def tsquery(text: str) -> str | None:
    """A to_tsquery('simple', ...) expression, or None when nothing could match."""
    query = parse(text)
    if not _positive(query):
        return None
    return " & ".join("(" + " | ".join(_ts_term(t) for t in group) + ")" for group in query)
