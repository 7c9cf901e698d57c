"""The "hsm-worker" actor: the only code in the project that imports ``pkcs11``.

`session` is the PKCS#11 adapter (one logged-in session, sync); `actor` runs
it in one dedicated thread and serves the `Hsm*` messages of
`actors.messages`; `provision` creates the default SoftHSM2 token of a data dir.
"""

from .actor import NAME, HsmWorker
from .session import HsmError, HsmTarget

__all__ = ["NAME", "HsmError", "HsmTarget", "HsmWorker"]
