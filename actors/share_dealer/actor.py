from __future__ import annotations

from typing import Any

import trio

from ..context import ActorContext

NAME = "share-dealer"


class ShareDealer:
    name = NAME

    def __init__(self, federation: Any) -> None:
        self._federation = federation

    async def run(self, ctx: ActorContext, *, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        await ctx.serve(self._handle)

    async def _handle(self, request: Any) -> Any:
        return None
