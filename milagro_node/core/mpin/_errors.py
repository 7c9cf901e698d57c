"""M-Pin's one exception type and its codes (to be listed in docs/ with the API).

Every refusal in `milagro_node.core.mpin` is an `MpinError` whose ``code`` says which rule
failed. Messages are fixed text and public names ("U", "V", "share"): never a scalar, a
token or a PIN.
"""

from __future__ import annotations

import enum

__all__ = ["MpinError", "MpinErrorCode"]


class MpinErrorCode(enum.StrEnum):
    """Why an M-Pin step was refused. A `str`, so ``err.code == "mpin-bad-proof"`` works."""

    BAD_POINT = "mpin-bad-point"  # not a subgroup point, or the identity where one is needed
    BAD_INPUT = "mpin-bad-input"  # a PIN out of range, an empty share list, a bad day
    BAD_PROOF = "mpin-bad-proof"  # the pairing check failed: wrong PIN, token or permit
    BAD_STATE = "mpin-bad-state"  # a session step out of order (finish before challenge)
    EXPIRED = "mpin-expired"  # the session's deadline passed, or a one-pass time is stale
    USED = "mpin-used"  # the session already ended, or a one-pass proof was replayed


class MpinError(Exception):
    """An M-Pin step was refused; ``code`` says why, ``message`` details it (no secrets)."""

    def __init__(self, code: MpinErrorCode | str, message: str) -> None:
        self.code = MpinErrorCode(code)
        self.message = message
        super().__init__(self.code, message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
