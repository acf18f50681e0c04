"""GET /v1/history/search: the same answers on SQLite and PostgreSQL, and no 500s.

A fixed corpus is generated from a word list with a seeded generator and stored
for one client. Every query's expected ids are computed here in Python from
the corpus, so both stores are checked against one truth.
"""

from __future__ import annotations

import asyncio
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from relay.storage.records import ConversationRecord, MessageRecord, new_id, utc_now
from tests.conftest import Running

WORDS = [
    "apple", "banana", "cherry", "delta", "echo", "falcon", "garden", "harbor",
    "island", "jungle", "kettle", "lemon", "meadow", "nectar", "orbit", "pepper",
    "quartz", "river", "saddle", "timber", "umbra", "velvet", "willow", "xenon",
    "yonder", "zephyr", "near", "not", "and", "café",
]  # fmt: skip
CONVERSATIONS = 4
SIZE = 240


@dataclass(frozen=True)
class Doc:
    id: str
    conversation: int
    content: str

    @property
    def words(self) -> list[str]:
        return self.content.split()

    def has(self, word: str) -> bool:
        return word in self.words

    def has_phrase(self, *phrase: str) -> bool:
        words, size = self.words, len(phrase)
        return any(tuple(words[i : i + size]) == phrase for i in range(len(words) - size + 1))


def corpus_texts() -> list[str]:
    rng = random.Random(20240611)
    texts = []
    for index in range(SIZE):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        if index % 9 == 0:  # the phrase "river saddle", in order
            spot = rng.randint(0, len(words))
            words[spot:spot] = ["river", "saddle"]
        elif index % 11 == 0:  # both words, never adjacent in that order
            words = [w for w in words if w not in ("river", "saddle")]
            words = ["saddle", *words, "river"]
        texts.append(" ".join(words))
    texts[5] = " ".join(["kettle"] * 8)  # the best match for "kettle" by far
    return texts


@dataclass
class Corpus:
    docs: list[Doc]
    conversations: list[str]
    headers: dict[str, str]

    def expect(self, match: Callable[[Doc], bool], conversation: int | None = None) -> set[str]:
        return {
            d.id
            for d in self.docs
            if match(d) and (conversation is None or d.conversation == conversation)
        }


async def load_corpus(running: Running) -> Corpus:
    # This client searches a lot: lift its general rate limit out of the way.
    client_id, api_key = await running.new_client(
        "history", rate_limits={"default": "100000/minute"}
    )
    headers = {"Authorization": f"Bearer {await running.token_for(api_key)}"}
    store = running.relay.store
    conversations = []
    for _ in range(CONVERSATIONS):
        conversation = ConversationRecord(new_id("conv"), client_id, utc_now())
        await store.add_messages([], new_conversation=conversation)
        conversations.append(conversation.id)
    docs, messages = [], []
    for index, text in enumerate(corpus_texts()):
        which = index % CONVERSATIONS
        message = MessageRecord(
            new_id("msg"),
            conversations[which],
            client_id,
            "user" if index % 2 == 0 else "assistant",
            text,
            "complete",
            utc_now(),
        )
        messages.append(message)
        docs.append(Doc(message.id, which, text))
    for start in range(0, len(messages), 24):
        await asyncio.gather(*(store.add_messages([m]) for m in messages[start : start + 24]))
    return Corpus(docs, conversations, headers)


async def search(running: Running, headers: dict[str, str], **params: Any) -> httpx.Response:
    return await running.client.get("/v1/history/search", params=params, headers=headers)


async def search_all(
    running: Running, headers: dict[str, str], q: str, limit: int = 100, **params: Any
) -> list[list[dict[str, Any]]]:
    """Every page of a search, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {"q": q, "limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await search(running, headers, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"results", "next_cursor"}
        assert len(body["results"]) <= limit
        pages.append(body["results"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50


def ids(pages: list[list[dict[str, Any]]]) -> list[str]:
    return [result["id"] for page in pages for result in page]


# (query, the documents it must find): AND of words, phrases, OR, exclusion.
QUERIES: list[tuple[str, Callable[[Doc], bool]]] = [
    ("apple", lambda d: d.has("apple")),
    ("APPLE", lambda d: d.has("apple")),
    ("apple banana", lambda d: d.has("apple") and d.has("banana")),
    ("apple, banana!", lambda d: d.has("apple") and d.has("banana")),
    ("lemon meadow orbit", lambda d: d.has("lemon") and d.has("meadow") and d.has("orbit")),
    ('"river saddle"', lambda d: d.has_phrase("river", "saddle")),
    ('"saddle river"', lambda d: d.has_phrase("saddle", "river")),
    ("river saddle", lambda d: d.has("river") and d.has("saddle")),
    ('"river saddle" falcon', lambda d: d.has_phrase("river", "saddle") and d.has("falcon")),
    ("apple OR banana", lambda d: d.has("apple") or d.has("banana")),
    ("apple OR banana OR cherry", lambda d: d.has("apple") or d.has("banana") or d.has("cherry")),
    ("apple OR banana cherry", lambda d: (d.has("apple") or d.has("banana")) and d.has("cherry")),
    ("apple -banana", lambda d: d.has("apple") and not d.has("banana")),
    (
        "apple -banana -cherry",
        lambda d: d.has("apple") and not (d.has("banana") or d.has("cherry")),
    ),
    ("cherry OR delta -echo", lambda d: (d.has("cherry") or d.has("delta")) and not d.has("echo")),
    ('timber -"river saddle"', lambda d: d.has("timber") and not d.has_phrase("river", "saddle")),
    ("café", lambda d: d.has("café")),
    ("near", lambda d: d.has("near")),
    ("NOT", lambda d: d.has("not")),
    ("AND", lambda d: d.has("and")),
    ("near not", lambda d: d.has("near") and d.has("not")),
    ("zzzz", lambda d: False),
    ("apple zzzz", lambda d: False),
    ("-apple", lambda d: False),
    ("appl", lambda d: False),  # words, not prefixes
]


async def test_queries_find_exactly_the_expected_messages(relay: Running) -> None:
    corpus = await load_corpus(relay)
    for query, match in QUERIES:
        expected = corpus.expect(match)
        found = ids(await search_all(relay, corpus.headers, query))
        assert len(found) == len(set(found)), query
        assert set(found) == expected, query
    # The corpus is not trivial: the checks above are worth something.
    assert len(corpus.expect(lambda d: d.has("apple"))) > 30
    assert (
        0
        < len(corpus.expect(lambda d: d.has_phrase("river", "saddle")))
        < len(corpus.expect(lambda d: d.has("river") and d.has("saddle")))
    )


async def test_results_are_marked_messages_in_pages(relay: Running) -> None:
    corpus = await load_corpus(relay)
    by_id = {d.id: d for d in corpus.docs}
    results = (await search_all(relay, corpus.headers, "falcon"))[0]
    assert results
    for result in results:
        assert set(result) == {
            "id", "conversation_id", "role", "content", "created_at", "status", "snippet",
        }  # fmt: skip
        doc = by_id[result["id"]]
        assert result["content"] == doc.content
        assert result["conversation_id"] == corpus.conversations[doc.conversation]
        assert result["status"] == "complete"
        assert "<mark>falcon</mark>" in result["snippet"]
        assert "<mark>" not in result["snippet"].replace("<mark>falcon</mark>", "")

    phrase = (await search_all(relay, corpus.headers, '"river saddle"'))[0]
    assert phrase
    # A phrase is marked as one span (SQLite) or word by word (PostgreSQL).
    marked = re.compile(r"<mark>river</mark> <mark>saddle</mark>|<mark>river saddle</mark>")
    assert all(marked.search(r["snippet"]) for r in phrase)

    # Pagination follows next_cursor.
    expected = corpus.expect(lambda d: d.has("apple"))
    pages = await search_all(relay, corpus.headers, "apple", limit=7)
    assert [len(p) for p in pages[:-1]] == [7] * (len(pages) - 1)
    assert 1 <= len(pages[-1]) <= 7
    found = ids(pages)
    assert len(found) == len(set(found)) == len(expected)
    assert set(found) == expected
    # Pages continue the one ranked order.
    assert found == ids(await search_all(relay, corpus.headers, "apple", limit=100))

    first = await search(relay, corpus.headers, q="apple", limit=1)
    assert first.json()["next_cursor"] is not None
    none_left = await search(relay, corpus.headers, q="zzzz", limit=5)
    assert none_left.json() == {"results": [], "next_cursor": None}


async def test_conversation_filter(relay: Running) -> None:
    corpus = await load_corpus(relay)
    for which, conversation_id in enumerate(corpus.conversations):
        for query, match in QUERIES[:12]:
            expected = corpus.expect(match, conversation=which)
            pages = await search_all(relay, corpus.headers, query, conversation_id=conversation_id)
            assert set(ids(pages)) == expected, (query, which)
            assert {r["conversation_id"] for p in pages for r in p} <= {conversation_id}

    unknown = await search(relay, corpus.headers, q="apple", conversation_id="conv_unknown")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


def junk(length: int) -> str:
    rng = random.Random(7)
    alphabet = (
        string.printable.replace("\x0b", "").replace("\x0c", "") + "«»\u201c\u201d\u2018\u2019…—€😀"
    )
    return "".join(rng.choice(alphabet) for _ in range(length))


HOSTILE = [
    '"',
    '""',
    '"""',
    '"unbalanced apple',
    'apple"',
    'apple "banana',
    "*",
    "app*",
    "apple*",
    "-",
    "--",
    "- - -",
    "OR",
    "OR OR OR",
    "apple OR",
    "OR apple",
    "AND",
    "apple AND banana",
    "NOT",
    "NOT apple",
    "apple NOT banana",
    "NEAR",
    "NEAR(apple banana)",
    "NEAR(apple banana, 2)",
    "apple NEAR/2 banana",
    "(",
    ")",
    "(apple",
    "apple)",
    "((()))",
    "(apple OR banana) AND cherry",
    ":",
    "content:apple",
    "messages_fts:apple",
    "^",
    "^apple",
    "{}",
    "{apple banana}",
    "{content}: apple",
    "' OR 1=1 --",
    "'; DROP TABLE messages; --",
    '" OR ""="',
    "1; SELECT * FROM clients",
    "\\",
    "apple\\",
    '\\"',
    "\\'",
    "'",
    "''",
    "apple & banana",
    "apple | banana",
    "!apple",
    "apple <-> banana",
    "apple:*",
    "'apple':*",
    "apple:A",
    "%",
    "%apple%",
    "_",
    "$1",
    "?",
    "NULL",
    "😀",
    "apple 😀 banana",
    "مرحبا بالعالم",
    "\u202eapple\u202c",
    "שלום apple",
    "日本語のテキスト",
    "naïve café",
    "e\u0301",
    "\u200b\u200d",
    "apple\t\x01\x02\x1f\x7fbanana",
    "\x1b[31mred\x1b[0m",
    "!@#$%^&*()",
    ".,;:!?",
    "-apple -banana",
    '-"river saddle"',
    "- apple",
    junk(500),
    "apple " * 83,
    "a" * 500,
    "-" * 500,
    '"' * 499,
    "𠀀" * 500,
]


async def test_hostile_queries_never_fail(relay: Running) -> None:
    corpus = await load_corpus(relay)
    assert len(HOSTILE) >= 30
    for query in HOSTILE:
        response = await search(relay, corpus.headers, q=query)
        assert response.status_code in (200, 422), (query, response.status_code, response.text)
        body = response.json()
        if response.status_code == 200:
            assert isinstance(body["results"], list)
            assert len(body["results"]) <= 20
        else:
            assert body["error"]["code"] == "validation_error"
    # Operators in the text are only words: nothing there matches everything.
    for query in ("' OR 1=1 --", '" OR ""="', "*", "%", "NULL", "1; SELECT * FROM clients"):
        response = await search(relay, corpus.headers, q=query)
        assert response.json()["results"] == [], query
    for query, match in [
        ("NEAR(apple banana)", lambda d: d.has_phrase("near", "apple") and d.has("banana")),
        ("apple AND banana", lambda d: d.has("apple") and d.has("and") and d.has("banana")),
        ("-apple -banana", lambda d: False),
        ("(apple", lambda d: d.has("apple")),
        ('apple "banana', lambda d: d.has("apple") and d.has("banana")),
    ]:
        pages = await search_all(relay, corpus.headers, query)
        assert set(ids(pages)) == corpus.expect(match), query


async def test_bad_queries_are_422(relay: Running) -> None:
    headers = await relay.bearer("history")
    for params in (
        {"q": ""},
        {"q": " "},
        {"q": " \t\n "},
        {},
        {"q": "a" * 501},
        {"q": "apple", "limit": "0"},
        {"q": "apple", "limit": "101"},
        {"q": "apple", "cursor": "garbage"},
        {"q": "apple", "cursor": "x" * 65},
    ):
        response = await search(relay, headers, **params)
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"], params
    # The bounds themselves are fine.
    assert (await search(relay, headers, q="a" * 500, limit=100)).status_code == 200
    assert (await search(relay, headers, q="a", limit=1)).status_code == 200
