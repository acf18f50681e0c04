"""Request heads against a real `relay serve`: too large, too many headers, never
finished (memory), not HTTP at all. Each refusal is a clean answer in the one error
shape, and the server's memory stays flat."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.processes import Instance, relay_instances, rss_kib, sqlite_env
from tests.support.raw_http import (
    answered,
    assert_refused,
    connect,
    exchange,
    parse,
    read_to_close,
    send,
)

HEALTH = b"GET /health HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """Relay with its default bounds (32 KiB of head, 100 headers)."""
    env = sqlite_env(tmp_path_factory.mktemp("relay"))
    with relay_instances(env, 1) as (instance,):
        yield instance


def test_a_header_of_a_megabyte_is_431(served: Instance) -> None:
    big = HEALTH + b"X-Big: " + b"a" * MIB + b"\r\n\r\n"
    message = assert_refused(exchange(served, big), 431, "headers_too_large")
    assert "32768 bytes" in message


def test_ten_megabytes_of_headers_are_431(served: Instance) -> None:
    line = b"X-Filler: " + b"b" * 1000 + b"\r\n"
    many = HEALTH + line * (10 * MIB // len(line)) + b"\r\n"
    assert_refused(exchange(served, many), 431, "headers_too_large")


def test_a_long_request_line_is_431(served: Instance) -> None:
    request = b"GET /health?" + b"q" * 40_000 + b" HTTP/1.1\r\nHost: relay\r\n\r\n"
    assert_refused(exchange(served, request), 431, "headers_too_large")


def test_more_headers_than_allowed_are_431(served: Instance) -> None:
    # 101 short headers are far under the byte cap: the count refuses them.
    many = HEALTH + b"".join(b"X-H%d: v\r\n" % i for i in range(101)) + b"\r\n"
    message = assert_refused(exchange(served, many), 431, "headers_too_large")
    assert "100 headers" in message


def test_heads_within_the_bounds_are_served(served: Instance) -> None:
    # 95 headers (with Host and Connection) and 20 KB in all: under both bounds.
    some = HEALTH + b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 200) for i in range(95)) + b"\r\n"
    response = exchange(served, some)
    assert response.status == 200, response
    assert response.json()["status"] == "ok"


def test_a_head_sent_in_parts_is_measured_whole(served: Instance) -> None:
    # Each part is under the cap, the head is not.
    line = b"X-Part: " + b"p" * 990 + b"\r\n"
    with connect(served) as sock:
        send(sock, HEALTH + line * 20)
        time.sleep(0.2)  # so the parts arrive apart
        send(sock, line * 20 + b"\r\n")
        response = parse(read_to_close(sock))
    assert_refused(response, 431, "headers_too_large")


def test_a_head_near_the_cap_with_its_body_is_served(served: Instance) -> None:
    # Head and body arrive together, more than the cap between them: only the head counts.
    body = b'{"api_key": "rly_' + b"k" * 20_000 + b'"}'
    head = (
        b"POST /auth/token HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n"
        + b"X-Pad: "
        + b"h" * 31_000
        + b"\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
    )
    response = exchange(served, head + body)
    assert response.status == 422, response  # the body was read whole: its key is too long
    assert response.json()["error"]["details"][0]["field"] == "api_key"


def test_what_is_not_http_is_400_in_the_error_shape(served: Instance) -> None:
    for garbage in (b"GET\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"):
        assert_refused(exchange(served, garbage), 400, "bad_request")


def test_unfinished_heads_do_not_grow_memory(served: Instance) -> None:
    """Ten connections each send up to 20 MiB of one header that never ends: each is
    refused once past the cap, and the server's memory stays flat."""
    block = b"a" * MIB
    sockets = [connect(served) for _ in range(10)]
    try:
        before = peak = rss_kib(served.process.pid)
        sending = list(sockets)
        for sock in sending:
            send(sock, b"GET /health HTTP/1.1\r\nHost: relay\r\nX-Endless: ")
        for _ in range(20):
            # A socket the server answered (or closed) is done; the others send on.
            sending = [s for s in sending if not answered(s) and send(s, block)]
            peak = max(peak, rss_kib(served.process.pid))
            if not sending:
                break
        assert (peak - before) * 1024 < 30 * MIB, f"grew {(peak - before) // 1024} MiB"
        assert sending == []  # every connection was refused, none took 20 MiB
        for sock in sockets:
            assert_refused(parse(read_to_close(sock)), 431, "headers_too_large")
    finally:
        for sock in sockets:
            sock.close()
    assert exchange(served, HEALTH + b"\r\n").status == 200  # and it still serves
