"""Any user text read as a full-text query, the same way for both stores.

The syntax is web-search style, as PostgreSQL's websearch_to_tsquery reads it:
words are ANDed, `"quoted words"` are a phrase, `OR` between two terms
alternates them, and `-term` excludes. Each store renders the parsed query
for its engine with every word a quoted literal, so operators of FTS5 or
tsquery in the text are only words.
"""

from __future__ import annotations

import re

from relay.storage.records import SearchQuery, Term

TOKEN = re.compile(r'(-)?"([^"]*)"?|(\S+)')
WORD = re.compile(r"[^\W_]+")


def parse(text: str) -> SearchQuery:
    """The query `text` asks for; words only, so no engine syntax survives."""
    groups: SearchQuery = []
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
