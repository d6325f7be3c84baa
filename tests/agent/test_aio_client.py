"""AsyncBoardClient against real board servers (TCP, threads)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import zstandard

from genode_cr import errors
from genode_cr.aio_client import AsyncBoardClient
from genode_cr.checkpoint import decode_page
from genode_cr.link import FaultProxy, Faults
from genode_cr.v1 import board_pb2 as bpb
from genode_cr.v1 import checkpoint_pb2 as cpb

from .conftest import assert_continues, counts, eventually, record_staged_pages, run


async def counted_lines(client: AsyncBoardClient, name: str, want: int) -> list[int]:
    async def enough():
        numbers = counts(line.text for line in await client.logs(name))
        return numbers if len(numbers) >= want else None
    return await eventually(enough, f"{want} count lines of {name} on {client.name}")


def test_connect_hello_start_and_list(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            assert client.info.name == "boardA" and client.info.protocol_version == 1
            assert {rom.name for rom in client.info.roms} >= {"counter", "kvstore", "ticker"}
            started = await client.start("counter")
            assert (started.name, started.rom, started.state) == ("counter", "counter",
                                                                  "running")
            assert [c.name for c in await client.components()] == ["counter"]
            assert (await client.pause("counter")).state == "paused"
            assert (await client.resume("counter")).state == "running"
            again = await client.hello()
            assert again.name == "boardA"
            await client.kill("counter")
            assert await client.components() == []
            assert client.stats.messages_received >= 7
        assert client.closed

    run(scenario())


def test_board_errors_keep_their_type(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            with pytest.raises(errors.RomMissing):
                await client.start("nothing")
            with pytest.raises(errors.UnknownComponent):
                await client.pause("nothing")
            with pytest.raises(errors.UnknownComponent):
                await client.logs("nothing")
            await client.start("counter")
            with pytest.raises(errors.NameInUse):
                await client.start("counter")
            with pytest.raises(errors.RequestError, match="must follow the last"):
                async for _ in client.checkpoint_stream("counter", since_id="no-such-id"):
                    pass
            with pytest.raises(errors.RequestError, match="no restore session"):
                await client.stage_stream(99, [bpb.CheckpointStart(), bpb.CheckpointEnd()])
            session = await client.begin_restore()
            with pytest.raises(errors.RequestError, match="must begin with its CheckpointStart"):
                await client.stage_stream(session, [bpb.PageChunk()])
            with pytest.raises(errors.RequestError, match="nothing staged"):
                await client.commit_restore(session)
            # After all those refusals the client still works.
            assert [c.name for c in await client.components()] == ["counter"]

    run(scenario())


def test_follow_logs_while_a_checkpoint_streams(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            await client.start("counter")
            await counted_lines(client, "counter", 2)
            followed: list[str] = []
            checkpoint_done = asyncio.Event()
            after_checkpoint: list[str] = []

            async def follow():
                async with contextlib.aclosing(client.follow_logs("counter")) as lines:
                    async for line in lines:
                        assert line.index == len(followed)
                        followed.append(line.text)
                        if checkpoint_done.is_set():
                            after_checkpoint.append(line.text)
                            if len(after_checkpoint) >= 2:
                                return

            follower = asyncio.create_task(follow())
            await eventually(lambda: len(followed) >= 2, "followed lines")
            messages = [m async for m in client.checkpoint_stream("counter")]
            checkpoint_done.set()
            await asyncio.wait_for(follower, 10)

            assert isinstance(messages[0], bpb.CheckpointStart)
            assert isinstance(messages[-1], bpb.CheckpointEnd)
            chunks = messages[1:-1]
            assert chunks and all(isinstance(m, bpb.PageChunk) for m in chunks)
            assert sum(len(c.pages) for c in chunks) == messages[0].page_count
            assert all(p.compression == cpb.COMPRESSION_ZSTD for c in chunks for p in c.pages)
            numbers = counts(followed)
            assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 4
            # The follow was cancelled on the board; the link carries on.
            assert [c.state for c in await client.components()] == ["running"]
            assert not a.server.service._followers

    run(scenario())


def reencode(messages, level: int = 19):
    """The same checkpoint with every page compressed differently from the board."""
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    out = []
    for message in messages:
        if isinstance(message, bpb.PageChunk):
            chunk = bpb.PageChunk()
            for page in message.pages:
                chunk.pages.add(digest=page.digest, compression=cpb.COMPRESSION_ZSTD,
                                data=compressor.compress(decode_page(page)))
            message = chunk
        out.append(message)
    return out


@pytest.mark.parametrize("recompressed", [False, True], ids=["as-taken", "foreign-encoding"])
def test_checkpoint_from_a_staged_into_b_untouched(boards, recompressed):
    a, b = boards("boardA"), boards("boardB")
    staged = record_staged_pages(b)

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as source, \
                await AsyncBoardClient.connect(b.url, timeout=10) as target:
            await source.start("counter")
            await counted_lines(source, "counter", 3)
            messages = [m async for m in source.checkpoint_stream("counter", freeze=True)]
            before = counts(line.text for line in await source.logs("counter"))
            await source.kill("counter")
            if recompressed:
                messages = reencode(messages)
            sent = [page.SerializeToString() for m in messages
                    if isinstance(m, bpb.PageChunk) for page in m.pages]

            async def produce():             # an async source, as the agent's gRPC stream is
                for message in messages:
                    yield message

            session = await target.begin_restore()
            done = await target.stage_stream(session, produce())
            assert (done.rounds, done.pages_written) == (1, messages[0].page_count)
            report = await target.commit_restore(session)
            assert report.component == "counter" and report.chain_length == 1
            assert report.checkpoint_id == messages[0].manifest.id
            assert staged == sent            # the very bytes, nothing re-encoded on the way
            after = await counted_lines(target, "counter", 2)
            assert_continues(before, after)

    run(scenario())


def test_incremental_chain_staged_in_rounds(boards):
    a, b = boards("boardA"), boards("boardB")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as source, \
                await AsyncBoardClient.connect(b.url, timeout=10) as target:
            await source.start("counter")
            await counted_lines(source, "counter", 2)
            full = [m async for m in source.checkpoint_stream("counter")]
            await counted_lines(source, "counter", 4)
            delta = [m async for m in source.checkpoint_stream(
                "counter", since_id=full[0].manifest.id, freeze=True)]
            assert delta[0].manifest.parent_id == full[0].manifest.id
            before = counts(line.text for line in await source.logs("counter"))
            await source.kill("counter")
            session = await target.begin_restore()
            assert (await target.stage_stream(session, full)).rounds == 1
            assert (await target.stage_stream(session, delta)).rounds == 2
            report = await target.commit_restore(session)
            assert report.chain_length == 2
            assert_continues(before, await counted_lines(target, "counter", 2))

    run(scenario())


def test_request_ids_wrap_around_past_uint32(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            client._last_id = (1 << 32) - 3       # as after four billion requests
            for _ in range(3):                    # ids 2**32-2, 2**32-1, then 1
                assert await client.components() == []
            assert client._last_id == 1

    run(scenario())


def test_undecodable_request_fails_the_unanswered_call(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            await client.link.send(b"\xff")   # not a Request: the board answers id 0
            with pytest.raises(errors.ProtocolError, match="undecodable request"):
                await client.components()    # the only call waiting for its first answer
            assert await client.components() == []

    run(scenario())


def test_board_going_away_fails_pending_and_later_calls(boards):
    a = boards("boardA")

    async def scenario():
        client = await AsyncBoardClient.connect(a.url, timeout=10)
        try:
            await client.start("counter")
            follow = client.follow_logs("counter")
            first = await anext(follow)
            assert first.index == 0

            async def read_on():            # lines until the link goes; a follow never ends
                async for _ in follow:
                    pass

            waiting = asyncio.create_task(read_on())
            await asyncio.to_thread(a.stop)
            with pytest.raises(errors.BoardUnreachable):
                await asyncio.wait_for(waiting, 15)
            await asyncio.wait_for(client.wait_closed(), 15)
            assert client.closed
            with pytest.raises(errors.BoardUnreachable):
                await client.components()
            with pytest.raises(errors.BoardUnreachable):
                async for _ in client.checkpoint_stream("counter"):
                    pass
        finally:
            await client.close()

    run(scenario())


def test_silent_board_hits_the_deadline(boards):
    a = boards("boardA")

    async def scenario():
        with FaultProxy(("127.0.0.1", a.port), Faults()) as proxy:
            async with await AsyncBoardClient.connect(proxy.url, timeout=0.5) as client:
                assert await client.components() == []
                proxy.cut(60)
                with pytest.raises(errors.BoardUnreachable, match="did not answer within"):
                    await client.components()

    run(scenario())


def test_connect_to_nothing_is_unreachable(boards):
    a = boards("boardA")
    a.stop()

    async def scenario():
        with pytest.raises(errors.BoardUnreachable):
            await AsyncBoardClient.connect(a.url, connect_timeout=2)

    run(scenario())


def test_checkpoint_and_stage_streams_resume(boards):
    a = boards("boardA")

    async def scenario():
        async with await AsyncBoardClient.connect(a.url, timeout=10) as client:
            await client.start("counter")
            await counted_lines(client, "counter", 1)
            messages = [m async for m in client.checkpoint_stream("counter")]
            checkpoint_id = messages[0].manifest.id
            again = [m async for m in client.checkpoint_stream(
                "counter", resume_id=checkpoint_id, from_part=1)]
            assert [m.SerializeToString() for m in again] == \
                [m.SerializeToString() for m in messages[1:]]

            session = await client.begin_restore("copy")
            with pytest.raises(errors.RequestError, match="ended before its CheckpointEnd"):
                await client.stage_stream(session, messages[:1])
            status = await client.stage_status(session)
            assert (status.session, status.checkpoint_id, status.parts, status.rounds) == \
                (session, checkpoint_id, 1, 0)
            with pytest.raises(errors.RequestError, match="not a CheckpointStart"):
                await client.stage_stream(session, messages, resume=True)
            done = await client.stage_stream(session, messages[1:], resume=True)
            assert done.rounds == 1
            status = await client.stage_status(session)
            assert (status.checkpoint_id, status.parts, status.last_staged_id) == \
                ("", 0, checkpoint_id)
            await client.abort_restore(session)
            with pytest.raises(errors.RequestError, match="no restore session"):
                await client.stage_status(session)

    run(scenario())
