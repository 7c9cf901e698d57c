"""The "share-dealer" actor (role ``dta``): this node's share of the M-Pin master secret.

Placeholder: being built (issue 6).
"""

from .actor import ShareDealer

__all__ = ["ShareDealer"]
