"""The hub's room writer (hub.cluster.writer) against a real nats-server: a client line that
JetStream had stored already (the hub gave up on it although it was stored, or another hub
stored it before a failover) is not stored a second time when the client resends it and the
hub loop has not heard of the first yet, even inside a batch, where JetStream's per-message
``Nats-Msg-Id`` dedupe cannot see it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs
import nats
import pytest
from nats.js import api

from roomcast.hub.cluster.messages import Proposal
from roomcast.hub.cluster.wire import decode_message, encode_message
from roomcast.hub.cluster.writer import RoomWriter
from roomcast.shared import events, limits
from tests.tools.natsproc import nats_nodes

pytestmark = pytest.mark.timeout(60)

STREAM, SUBJECT = "writer_rooms_0", "writer.room.0.ops"


def say(body: str, msg_id: str) -> Proposal:
    event = events.Deliver(room="ops", seq=0, nick="alice", body=body, ts=0.0)
    return Proposal("ops", event, msg_id)


async def _resend_of_a_stored_line(url: str, first_by: str) -> list[tuple[str, int]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=limits.NATS_API_TIMEOUT)
        await js.add_stream(api.StreamConfig(name=STREAM, subjects=["writer.room.0.*"]))
        done: dict[str, int | None] = {}
        both = asyncio.Event()

        def on_done(proposal: Proposal, result: int | None) -> None:
            done[proposal.msg_id] = result
            if len(done) == 2:
                both.set()

        writer = RoomWriter(js, "a", lambda _: STREAM, on_done, lambda _: None, lambda: None)
        late = say("late", "c.aa.4")
        # Stored by this hub (whose answer never came: it gave up) or by another before it died...
        first = attrs.evolve(late.event, seq=1)
        ack = await js.publish(SUBJECT, encode_message(first_by, [(first, late.msg_id)]),
                               headers={"Nats-Msg-Id": late.msg_id})  # fmt: skip
        writer.consumed(SUBJECT, ack.seq, 1, [late.msg_id])  # ...and its consumer brought it
        # The client resends it (same mid: same id) together with a new line: one batch.
        writer.submit(SUBJECT, late)
        writer.submit(SUBJECT, say("next", "c.aa.5"))
        async with asyncio.timeout(20):
            await both.wait()
        assert done == {"c.aa.4": 0, "c.aa.5": 0}, done
        stored = []
        for sseq in range(1, (await js.stream_info(STREAM)).state.last_seq + 1):
            msg = await js.get_msg(STREAM, sseq)
            batch, _ = decode_message(msg.data or b"", "ops")
            stored += [(e.body, e.seq) for e, _ in batch if isinstance(e, events.Deliver)]
        await writer.close()
        return stored
    finally:
        await nc.close()


@pytest.mark.parametrize("first_by", ["a", "b"])
def test_a_resent_line_stored_before_the_hub_gave_up_is_not_stored_again(
    tmp_path: Path, first_by: str
) -> None:
    with nats_nodes(tmp_path, 1) as (node,):
        stored = asyncio.run(_resend_of_a_stored_line(node.url, first_by))
    assert stored == [("late", 1), ("next", 2)], stored
