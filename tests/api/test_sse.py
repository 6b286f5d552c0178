"""api.sse on its own: the SSE wire format and the bounded per-client buffer."""

from __future__ import annotations

import asyncio

from api.sse import ClientBuffer, comment, message


def test_messages_follow_the_wire_format() -> None:
    assert message('{"a":1}', event="event", id=7) == b'id: 7\nevent: event\ndata: {"a":1}\n\n'
    assert message("one\ntwo\r\nthree\rfour") == b"data: one\ndata: two\ndata: three\ndata: four\n\n"
    assert message(id=-1, retry_ms=2000, note="start\nhere") == b": start here\nretry: 2000\nid: -1\n\n"
    assert comment("keep-alive") == b": keep-alive\n\n"


def test_the_buffer_never_holds_more_than_its_bound() -> None:
    async def scenario() -> None:
        buffer = ClientBuffer(100)
        item = b"x" * 30
        assert [await buffer.put(item, 0.01) for _ in range(3)] == [True] * 3
        assert not await buffer.put(item, 0.05)  # 120 > 100: waits for room, none comes
        assert (buffer.size, buffer.peak_bytes) == (90, 90)
        assert await buffer.take(0.01) == item * 3  # everything waiting, as one chunk
        assert await buffer.take(0.01) is None  # nothing within the wait: time for a heartbeat
        big = b"y" * 250
        assert await buffer.put(big, 0.01)  # larger than the bound: let in alone
        assert not await buffer.put(b"z", 0.01)
        assert buffer.peak_bytes == 250

        waiting = asyncio.ensure_future(buffer.put(b"z", 1.0))  # room comes when the reader takes
        await asyncio.sleep(0.01)
        assert await buffer.take(0.01) == big
        assert await waiting
        assert await buffer.take(0.01) == b"z"

    asyncio.run(scenario())


def test_closing_drops_what_waits_and_ends_with_the_final_message() -> None:
    async def scenario() -> None:
        buffer = ClientBuffer(1000)
        for _ in range(5):
            await buffer.put(b"e" * 100, 0.01)
        buffer.close(b"final")
        buffer.close(b"second")  # only the first close counts
        assert buffer.size == len(b"final")
        assert not await buffer.put(b"late", 0.01)
        assert await buffer.take(1.0) == b"final"
        assert await buffer.take(1.0) == b""  # closed and empty: the stream ends

    asyncio.run(scenario())
