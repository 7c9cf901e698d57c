"""A crashing actor inside a real node: restarted, and node.status over the API shows the count."""

import attrs
import pytest
import trio

from actors.mailbox import ActorError
from milagro_node.api_client import connect
from milagro_node.runtime.config import load_node_config
from milagro_node.runtime.datadir import initialise
from milagro_node.runtime.node import Node, actor_specs
from milagro_node.runtime.supervisor import ActorSpec


@attrs.frozen
class Crash:
    pass


class Fragile:
    name = "fragile"

    async def run(self, ctx, *, task_status):
        task_status.started()
        await ctx.serve(self.handle)

    async def handle(self, request):
        raise RuntimeError("simulated fault")


async def test_crash_is_counted_in_node_status(tmp_path, nursery):
    initialise(tmp_path)
    config = load_node_config(None, data_dir=tmp_path, environ={"MILAGRO_API_LISTEN": "127.0.0.1:0"})
    # No identity here (initialise, not `milagro-node init`): leave out the actors that need one.
    specs = [spec for spec in actor_specs(config) if spec.name in ("store", "hsm-worker", "keystore", "api-gateway")]
    node = Node(config, specs=[*specs, ActorSpec("fragile", Fragile)])
    await nursery.start(node.run)
    token = (tmp_path / "admin.token").read_text().strip()

    for expected_restarts in (1, 2):
        with pytest.raises(ActorError) as crashed:
            await node.supervisor.ask("fragile", Crash())
        assert crashed.value.code == "actor-crashed"
        async with connect(node.api_url(), token=token) as api:
            actors = {a["name"]: a for a in (await api.call("node.status"))["actors"]}
        assert actors["fragile"]["restarts"] == expected_restarts
        assert "simulated fault" in actors["fragile"]["last_error"]
        assert actors["store"]["restarts"] == actors["api-gateway"]["restarts"] == 0
        await trio.sleep(0.5)  # past the back-off: running again
        async with connect(node.api_url(), token=token) as api:
            assert (await api.call("node.health"))["ok"]
