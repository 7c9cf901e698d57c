"""The client's token file: plain, a device key awaiting enrolment, and a DVS token."""

import base64
import json

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from milagro_node.core import ipld, mpin, mpin_wire
from milagro_node.mpin_client import ClientError, TokenFile, device_key, enroll, new_device

DTAS = (("ws://127.0.0.1:1", "bafyreidta"),)
ISSUER_KEY = ed25519.Ed25519PrivateKey.generate()


def grant_for(user_id, device_key_bytes=None):
    """A grant as a node makes it, signed by a throwaway key: the client reads only its
    device key; the D-TAs check the rest."""
    extra = None if device_key_bytes is None else {mpin_wire.DEVICE_KEY: device_key_bytes}
    draft = mpin_wire.prepare_statement(mpin_wire.GRANT, issuer=ipld.cid_for(b"x", "dag-cbor"), subject=user_id,
                                        created=1, ttl=60, extra=extra)
    return draft.finish(ISSUER_KEY.sign(draft.to_be_signed)).data


def test_a_new_device_file_keeps_z_only_and_reads_back_0600(tmp_path):
    device = new_device("alice@example.com")
    path = tmp_path / "alice.token"
    device.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = TokenFile.load(path)
    assert loaded.token is None and loaded.dvs_z == device.dvs_z and loaded.grant is None
    assert device_key(loaded) == mpin.DvsKey.from_secret(device.dvs_z).pa.to_bytes()
    assert str(device.dvs_z) not in repr(loaded)


def test_a_plain_token_has_no_device_key(tmp_path):
    share = mpin.client_secret_share(mpin.new_master_share(), b"bob")
    plain = TokenFile("bob", share.to_bytes(), DTAS, 1)
    plain.save(tmp_path / "bob.token")
    loaded = TokenFile.load(tmp_path / "bob.token")
    assert loaded == plain and loaded.identity == b"bob"
    with pytest.raises(ClientError, match="holds no device key"):
        device_key(loaded)


@pytest.mark.parametrize("change", [
    {"token": None, "device_secret": None},  # nothing at all
    {"device_secret": base64.b64encode(bytes(32)).decode()},  # z = 0
    {"device_secret": base64.b64encode(b"\x01" * 31).decode()},  # not 32 bytes
    {"v": 2},
])
def test_an_unusable_token_file_is_refused_clearly(tmp_path, change):
    device = new_device("carol")
    device.save(tmp_path / "t")
    body = json.loads((tmp_path / "t").read_text()) | change
    (tmp_path / "t").write_text(json.dumps({k: v for k, v in body.items() if v is not None or k == "token"}))
    with pytest.raises(ClientError, match="not a usable token file"):
        TokenFile.load(tmp_path / "t")


def test_a_dvs_token_keeps_z_and_its_grant_and_is_checked_under_id_and_pa(tmp_path):
    device = new_device("erin")
    grant = grant_for("erin", device_key(device))
    share = mpin.client_secret_share(mpin.new_master_share(), b"erin")
    token = TokenFile("erin", share.to_bytes(), DTAS, 1, device.dvs_z, grant)
    token.save(tmp_path / "erin.token")
    loaded = TokenFile.load(tmp_path / "erin.token")
    assert loaded == token and loaded.identity == mpin.dvs_identity(b"erin", device_key(device))
    # A token and z without the grant naming the key (or the other way round) is refused.
    for bad in (attrs.evolve(token, grant=None), attrs.evolve(token, dvs_z=None)):
        bad.save(tmp_path / "bad.token")
        with pytest.raises(ClientError, match="not a usable token file"):
            TokenFile.load(tmp_path / "bad.token")


async def test_enrolment_refuses_a_grant_for_another_device_before_asking_any_dta():
    mine, other = new_device("dan"), new_device("dan")
    unreachable = ["ws://127.0.0.1:9"]
    with pytest.raises(ClientError, match="another device key"):
        await enroll("dan", grant_for("dan", device_key(other)), unreachable, "1234", device=mine)
    with pytest.raises(ClientError, match="client keygen"):
        await enroll("dan", grant_for("dan", device_key(mine)), unreachable, "1234")
    with pytest.raises(ClientError, match="names no device key"):
        await enroll("dan", grant_for("dan"), unreachable, "1234", device=mine)
