"""An api-gateway with its store, on 127.0.0.1 (port 0), for tests of the API and the console.

    sup, url = await start_node(nursery, tmp_path, burst=5)    # limits: ApiLimits fields
    async with connect(url, token=TOKEN) as api: ...
"""

import json

from actors.api_gateway import TOKEN_KEY, TOKEN_NAMESPACE, ApiGateway, ApiLimits, token_digest
from actors.store import StoreActor
from milagro_node.adapters.sqlite_store import Store
from milagro_node.runtime.supervisor import ActorSpec, Supervisor

TOKEN = "mn_test-token-for-the-gateway"


async def start_node(nursery, tmp_path, **limits):
    db = tmp_path / "node.db"
    with Store.open(db) as store:
        store.kv_put(TOKEN_NAMESPACE, TOKEN_KEY, token_digest(TOKEN))
    specs = [
        ActorSpec("store", lambda: StoreActor(db)),
        ActorSpec("api-gateway", lambda: ApiGateway("127.0.0.1", 0, ApiLimits(**limits)), ("store",)),
    ]
    sup = Supervisor(specs, node_status=lambda: {"actors": sup.snapshot()})
    await nursery.start(sup.run)
    return sup, sup.states["api-gateway"].ctx.info["url"]


async def raw(ws, text):
    """Send `text` as it is; the next message, decoded."""
    await ws.send_message(text)
    return json.loads(await ws.get_message())
