"""KEK rotation killed with SIGKILL at random points never loses a secret.

A child process (tests/keystore_rotator.py) runs store + hsm-worker + keystore
on one data dir and one SoftHSM2 token and rotates the KEK in a loop; this
test kills it after a random delay, then a fresh child looks at what the kill
left (before any clean-up), lets the keystore's start-up clean-up run and
reads every known secret back. The delays are drawn from a seed printed on
failure, so a failing sequence can be replayed.
"""

import json
import os
import random
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hsmkit import make_token
from testkit import clean_env

ROTATOR = Path(__file__).parent.parent / "keystore_rotator.py"
KILLS = 8
SECRETS = 14  # every kind, twice


def child(mode, db, token, stderr):
    return subprocess.Popen(
        [sys.executable, str(ROTATOR), mode, str(db), *token.argv(), str(SECRETS)],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env=clean_env(**token.env),
    )


def wait_for_ready(proc, timeout=20.0):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"rotator did not start: {line!r}")


def classify(before):
    """Which crash state of the rotation (actors/keystore.py's table) a kill left."""
    v, token = before["store_kek"], before["token_keks"]
    if v + 1 in token:
        return "before commit"
    if v - 1 in token:
        return "after commit, before destroy"
    return "between rotations"


@pytest.mark.slow
def test_rotation_killed_at_random_points_leaves_every_secret_readable(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    delays = random.Random(seed).sample([i / 100 for i in range(5, 60)], KILLS)
    token = make_token(tmp_path / "hsm")
    db = tmp_path / "node.db"
    states, rotations = Counter(), 0
    with open(tmp_path / "children.log", "w") as log:
        for delay in delays:
            rotator = child("rotate", db, token, log)
            wait_for_ready(rotator)
            time.sleep(delay)
            rotator.kill()
            rotator.wait(timeout=10)
            rotations += sum(line.startswith("rotated") for line in rotator.stdout)
            rotator.stdout.close()

            checker = child("check", db, token, log)
            out, _ = checker.communicate(timeout=30)
            report = json.loads(out.strip().splitlines()[-1])
            context = f"seed {seed}, delay {delay}: {report} (stderr in {log.name})"
            before = report["before"]
            # Atomicity: the kill left every record under the KEK the store names, and that KEK exists.
            assert before["record_keks"] == [before["store_kek"]], context
            assert before["store_kek"] in before["token_keks"], context
            assert report["read"] == SECRETS and report["bad"] == [], context
            # The start-up clean-up left exactly the current KEK in the token.
            assert report["token_keks"] == [report["kek"]] == [before["store_kek"]], context
            states[classify(before)] += 1
    print(f"{KILLS} kills over {rotations} rotations (seed {seed}): {dict(states)}")
    assert rotations > KILLS  # the kills did land during rotations, not all before the first
