"""Milagro Node: a peer node for decentralized core security services.

Layers, bottom up (a module imports only from layers below it):
``milagro_node.core`` (sans-IO protocol cores), ``milagro_node.adapters`` (one
module per dependency), the top-level ``actors`` package (long-lived trio
tasks), then ``milagro_node.runtime`` and ``milagro_node.cli`` (the node).
"""

__version__ = "0.1.0"
