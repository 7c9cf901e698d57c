"""runtime layer (see milagro_node/__init__.py)."""
