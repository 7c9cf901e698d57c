"""The node's actors: long-lived trio tasks that own their state and a mailbox.

They talk only by typed messages (`actors.messages`) through mailboxes
(`actors.mailbox`); the supervisor in `milagro_node.runtime` starts them.
One module per actor: `store`, `api_gateway`.
"""

from .context import Actor, ActorContext
from .mailbox import ActorError, Mailbox

__all__ = ["Actor", "ActorContext", "ActorError", "Mailbox"]
