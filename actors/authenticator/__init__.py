"""The "authenticator" actor (role ``mfa``): M-Pin logins.

Placeholder: being built (issue 6).
"""

from .actor import Authenticator

__all__ = ["Authenticator"]
