"""The pool's persistence interface.

Shaped after what ZooKeeper offers (nodepool's engine) so a ``ZooKeeperStore`` can
implement it next: whole records addressed by id, versioned compare-and-set updates,
sequential ids, small flag records. Nothing here assumes SQL or a single process.
"""

from __future__ import annotations

from typing import Protocol

from rackpool.pool.model import Node, NodeRequest


class Store(Protocol):
    def next_id(self, kind: str) -> int:
        """A new, never reused, sequence number for ``kind`` ("node", "request")."""

    def create_node(self, node: Node) -> Node:
        """Store a new node; returns it with ``version`` 1."""

    def update_node(self, node: Node) -> Node:
        """Replace a node if its stored version equals ``node.version`` (else StaleWrite)."""

    def delete_node(self, node_id: str) -> None: ...

    def get_node(self, node_id: str) -> Node:
        """Raises UnknownNode."""

    def list_nodes(self) -> list[Node]: ...

    def create_request(self, request: NodeRequest) -> NodeRequest: ...

    def update_request(self, request: NodeRequest) -> NodeRequest: ...

    def delete_request(self, request_id: str) -> None: ...

    def get_request(self, request_id: str) -> NodeRequest:
        """Raises UnknownRequest."""

    def list_requests(self) -> list[NodeRequest]: ...

    def set_paused(self, provider: str, paused: bool) -> None:
        """Operator's pause flag; survives restarts."""

    def paused_providers(self) -> set[str]: ...

    def close(self) -> None: ...
