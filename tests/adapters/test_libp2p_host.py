"""The libp2p adapter's fixes to py-libp2p's defaults that need no second process (the
rest are tested between node processes in tests/p2p)."""

import os
import subprocess
import sys

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import get_peer_and_seqno_msg_id
from libp2p.stream_muxer.yamux import yamux

from milagro_node.adapters.libp2p_host import InboundMessage, _Subscription  # importing sets the yamux default


def test_yamux_credits_a_window_once_half_is_read_not_after_every_read():
    assert yamux._yamux_release_on_read() is False


def test_an_operators_own_yamux_setting_wins():
    env = {**os.environ, "PY_YAMUX_RELEASE_ON_READ": "1"}
    code = ("import milagro_node.adapters.libp2p_host; from libp2p.stream_muxer.yamux import yamux; "
            "print(yamux._yamux_release_on_read())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


# -- a validated message goes to the subscription once, early or by the library ----------

ME, PEER, RELAY = (ID.from_pubkey(create_new_key_pair().public_key) for _ in range(3))


def _message(origin: ID, seqno: int) -> rpc_pb2.Message:
    return rpc_pb2.Message(data=b"envelope %d" % seqno, topicIDs=["t"], from_id=origin.to_bytes(),
                           seqno=seqno.to_bytes(8, "big"))


def _subscription(room: int) -> tuple[_Subscription, trio.MemoryReceiveChannel[InboundMessage]]:
    send, receive = trio.open_memory_channel[InboundMessage](room)
    return _Subscription("t", send, get_peer_and_seqno_msg_id, ME.to_bytes()), receive


def test_an_accepted_message_goes_out_at_once_and_the_librarys_copy_is_skipped():
    subscription, receive = _subscription(8)
    msg = _message(PEER, 1)
    subscription.deliver_early(get_peer_and_seqno_msg_id(msg), msg, RELAY)
    assert receive.receive_nowait() == InboundMessage(PEER.to_base58(), RELAY.to_base58(), "t", b"envelope 1")
    assert subscription.delivered_early(msg)  # the library's copy: skip it
    assert not subscription.delivered_early(msg)  # and only that one


def test_with_no_room_the_librarys_copy_is_the_one_delivered():
    subscription, receive = _subscription(1)
    first, second = _message(PEER, 1), _message(PEER, 2)
    for msg in (first, second):
        subscription.deliver_early(get_peer_and_seqno_msg_id(msg), msg, RELAY)
    assert receive.receive_nowait().data == b"envelope 1"
    assert subscription.delivered_early(first)
    assert not subscription.delivered_early(second)  # not handed over: the drain delivers it


def test_our_own_message_echoed_back_is_not_delivered_early():
    subscription, receive = _subscription(8)
    msg = _message(ME, 1)
    subscription.deliver_early(get_peer_and_seqno_msg_id(msg), msg, RELAY)
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()
