"""The libp2p adapter's fixes to py-libp2p's defaults that need no second process (the
rest are tested between node processes in tests/p2p)."""

import os
import subprocess
import sys

from libp2p.stream_muxer.yamux import yamux

import milagro_node.adapters.libp2p_host  # noqa: F401  (importing it sets the default)


def test_yamux_credits_a_window_once_half_is_read_not_after_every_read():
    assert yamux._yamux_release_on_read() is False


def test_an_operators_own_yamux_setting_wins():
    env = {**os.environ, "PY_YAMUX_RELEASE_ON_READ": "1"}
    code = ("import milagro_node.adapters.libp2p_host; from libp2p.stream_muxer.yamux import yamux; "
            "print(yamux._yamux_release_on_read())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
