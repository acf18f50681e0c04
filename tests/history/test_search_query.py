"""Search text becomes a safe FTS5 or tsquery expression, or None: never a syntax error."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from collections.abc import Iterator

import asyncpg
import pytest

from relay.history.search_query import parse
from relay.storage.postgres.search import tsquery as render_tsquery
from relay.storage.records import Term
from relay.storage.sqlite.search_index import fts5_query as render_fts5
from tests.support import services


def fts5_query(text: str) -> str | None:
    """User text as the SQLite store renders it: parsed, then written for FTS5."""
    return render_fts5(parse(text))


def tsquery(text: str) -> str | None:
    """User text as the PostgreSQL store renders it: parsed, then written for to_tsquery."""
    return render_tsquery(parse(text))


FTS5_LITERAL = re.compile(r'"(?:[^"]|"")*"')
TS_LITERAL = re.compile(r"'(?:[^']|'')*'")

HOSTILE = [
    "",
    " ",
    "\t\n",
    '"',
    '""',
    '"unterminated phrase',
    "'",
    "''",
    "\\",
    "\\'",
    "\x00",
    "a\x00b",
    "OR",
    "OR OR OR",
    "a OR",
    "OR a",
    "-",
    "- - -",
    "--a",
    "-a",
    "-a -b",
    '-"a b"',
    "a AND b",
    "NOT a",
    "a NOT b",
    "NEAR(a b, 3)",
    "a*",
    "^a",
    "content:a",
    "{content}:a",
    "a + b",
    "(a OR b",
    "a)",
    "a & b | !c <-> d:*",
    "!a",
    "a:*",
    "a:A",
    "'a' & 'b'",
    "a <2> b",
    "'; DROP TABLE messages; --",
    '") OR 1=1 --',
    "rowid=1",
    "%_%",
    "ünïcödé naïve café",
    "日本語のテキスト",
    "emoji 🎉 party",
    "\u202eright to left",
    "e\u0301",
    "x" * 500,
    "a " * 250,
    " OR ".join(["w"] * 100),
    '"' + "a " * 100 + '"',
    "-" + " -".join(["n"] * 100) + " keep",
]


def fts5_connection() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE docs USING fts5 (content, tokenize='unicode61 remove_diacritics 0')"
    )
    conn.executemany(
        "INSERT INTO docs (content) VALUES (?)",
        [
            ("the big cat sat near the door",),
            ("cat big",),
            ("drop table messages or not",),
            ("café naïve",),
        ],
    )
    return conn


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    conn = fts5_connection()
    yield conn
    conn.close()


def matches(conn: sqlite3.Connection, text: str) -> list[str] | None:
    expression = fts5_query(text)
    if expression is None:
        return None
    rows = conn.execute(
        "SELECT content FROM docs WHERE docs MATCH ? ORDER BY rowid", (expression,)
    ).fetchall()
    return [row[0] for row in rows]


def assert_safe_fts5(text: str) -> None:
    expression = fts5_query(text)
    if expression is None:
        return
    # Outside quoted literals there are only parentheses and the operators Relay writes.
    bare = FTS5_LITERAL.sub(" ", expression)
    assert re.fullmatch(r"[()\s]*((AND|OR|NOT)[()\s]+)*[()\s]*", bare), (text, expression)
    assert '"' in expression


def assert_safe_tsquery(text: str) -> None:
    expression = tsquery(text)
    if expression is None:
        return
    bare = TS_LITERAL.sub(" ", expression)
    assert re.fullmatch(r"[()\s&|!<\->]*", bare), (text, expression)
    assert "'" in expression


def test_parse_reads_web_search_syntax() -> None:
    assert parse("Hello, World!") == [[Term(("hello",))], [Term(("world",))]]
    assert parse('"big cat" sat') == [[Term(("big", "cat"))], [Term(("sat",))]]
    assert parse("cat OR dog") == [[Term(("cat",)), Term(("dog",))]]
    assert parse("cat or dog") == [[Term(("cat",))], [Term(("or",))], [Term(("dog",))]]
    assert parse("cat -dog") == [[Term(("cat",))], [Term(("dog",), negated=True)]]
    assert parse("OR cat OR") == [[Term(("cat",))]]
    assert parse("cat OR -dog") == [[Term(("cat",))], [Term(("dog",), negated=True)]]
    assert parse("-dog OR cat") == [[Term(("dog",), negated=True)], [Term(("cat",))]]
    assert parse("snake_case") == [[Term(("snake", "case"))]]
    assert parse("") == []
    assert parse("!!! ??? ---") == []


def test_fts5_expressions() -> None:
    assert fts5_query("hello world") == '("hello") AND ("world")'
    assert fts5_query("cat OR dog") == '("cat" OR "dog")'
    assert fts5_query('"big cat"') == '("big cat")'
    assert fts5_query("cat -dog") == '("cat") NOT "dog"'
    # A token glued by punctuation is a phrase of its words, as websearch_to_tsquery reads it.
    assert fts5_query('NEAR(a b) "x') == '("near a") AND ("b") AND ("x")'
    for nothing in ("", "   ", "-cat", "-cat -dog", "OR", '""', "*** ^^^", "\x00"):
        assert fts5_query(nothing) is None, nothing


def test_tsquery_expressions() -> None:
    assert tsquery("hello world") == "('hello') & ('world')"
    assert tsquery("cat OR dog") == "('cat' | 'dog')"
    assert tsquery('"big cat"') == "(('big' <-> 'cat'))"
    assert tsquery("cat -dog") == "('cat') & (!'dog')"
    assert tsquery("a & b | !c <-> d:*") == "('a') & ('b') & ('c') & ('d')"
    for nothing in ("", "-cat", "-cat -dog", "OR", "''", "& | ! <->", "\\"):
        assert tsquery(nothing) is None, nothing


def test_fts5_queries_find_what_they_say(fts5: sqlite3.Connection) -> None:
    everything = [
        "the big cat sat near the door",
        "cat big",
        "drop table messages or not",
        "café naïve",
    ]
    assert matches(fts5, "cat") == everything[:2]
    assert matches(fts5, '"big cat"') == everything[:1]
    assert matches(fts5, "cat -door") == everything[1:2]
    assert matches(fts5, "door OR messages") == [everything[0], everything[2]]
    # Operators in the text are words, not syntax.
    assert matches(fts5, "NEAR") == everything[:1]
    assert matches(fts5, "not") == everything[2:3]
    assert matches(fts5, "OR or") == everything[2:3]
    assert matches(fts5, "'; DROP TABLE messages; --") == everything[2:3]
    assert matches(fts5, "café") == everything[3:]
    assert matches(fts5, "cafe") == []


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_safe_for_fts5(fts5: sqlite3.Connection, text: str) -> None:
    assert_safe_fts5(text)
    matched = matches(fts5, text)  # raises on any syntax error
    assert matched is None or isinstance(matched, list)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_safe_for_tsquery(text: str) -> None:
    assert_safe_tsquery(text)


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    symbols = list("abcXYZ019 \t\"'\\-*^:(){}[]&|!<>~%_+=,.;")
    words = ["OR", "AND", "NOT", "NEAR", "é", "ß", "日", "🎉", "\x00", "\u200b", " OR ", " -", ' "']
    alphabet = symbols + words
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(count)]


def test_random_text_is_safe_for_fts5(fts5: sqlite3.Connection) -> None:
    answered = 0
    for text in random_texts(600, seed=20240601):
        assert_safe_fts5(text)
        if matches(fts5, text) is not None:
            answered += 1
    assert answered > 100  # most random texts hold at least one word


def test_random_text_is_safe_for_tsquery() -> None:
    texts = random_texts(600, seed=20240602)
    for text in texts:
        assert_safe_tsquery(text)
    assert sum(tsquery(text) is not None for text in texts) > 100


def test_every_expression_is_valid_tsquery_in_postgresql() -> None:
    services.require_postgres()
    texts = HOSTILE + random_texts(300, seed=20240603)
    expressions = [e for e in (tsquery(t) for t in texts) if e is not None]
    assert len(expressions) > 100

    async def check() -> list[str]:
        conn = await asyncpg.connect(services.POSTGRES_ADMIN_URL)
        try:
            results = []
            for expression in expressions:
                value = await conn.fetchval("SELECT to_tsquery('simple', $1)::text", expression)
                results.append(value)
            matched = await conn.fetchval(
                "SELECT to_tsvector('simple', 'the big cat sat') @@ to_tsquery('simple', $1)",
                tsquery('"big cat" -dog'),
            )
            assert matched is True
            return results
        finally:
            await conn.close()

    results = asyncio.run(check())
    assert len(results) == len(expressions)
    assert all(isinstance(r, str) for r in results)
