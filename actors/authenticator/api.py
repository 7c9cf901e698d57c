"""The ``mfa.*`` API methods (placeholder: being built)."""

from ..api_methods import ApiMethod

METHODS: dict[str, ApiMethod] = {}
