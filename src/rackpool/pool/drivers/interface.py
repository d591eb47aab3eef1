"""The contract between the pool framework and a provider driver.

A driver only translates: it creates and deletes machines through state machines with
a non-blocking :meth:`StateMachine.advance`, lists what exists, and reports quota.
The framework owns node state, persistence, quota arithmetic, health and retries.
Blocking backend calls run in the executor the framework hands to the adapter (one
per provider, sized by ``max-concurrency``); a state machine only submits and polls.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from rackpool.core.clock import Clock
from rackpool.pool.drivers.common_config import ProviderBase
from rackpool.pool.errors import LaunchError, ProviderUnavailable
from rackpool.pool.model import Resources

T = TypeVar("T")


@dataclass(frozen=True)
class Instance:
    """A machine as the backend reports it."""

    external_id: str
    name: str
    status: str  # "building" | "active" | "error"
    metadata: Mapping[str, str] = field(default_factory=dict)
    interface_ip: str = ""
    public_ipv4: str = ""
    private_ipv4: str = ""
    public_ipv6: str = ""
    az: str = ""
    resources: Resources = Resources(1, 0, 0)
    fault: str = ""
    connection_port: int = 0  # 0: the label's port


class Fence(Protocol):
    """The framework's check that this launcher still owns the node it launches (its
    lock, verified with the store): several launchers share a pool, and one that stalled
    past its session timeout has lost the node to another while it was stopped."""

    def check(self) -> None:
        """Right before a create request goes out (blocking; in the executor). Raises
        :class:`~rackpool.pool.errors.LockLost`: the node is not ours, send nothing."""

    def settle(self, external_id: str) -> Literal["ours", "adopted", "orphan"]:
        """When a create answered (blocking; in the executor): ``ours`` (record it),
        ``adopted`` (the lock was lost but the node's new owner took this server over:
        leave it) or ``orphan`` (the lock was lost and no node holds the server: the
        caller deletes it now, it must not live beside the new owner's)."""


@dataclass(frozen=True)
class LaunchSpec:
    node_id: str
    label: str
    hostname: str
    metadata: Mapping[str, str]
    # ``req-<uuid>``: the global request id a driver sends with the create (OpenStack's
    # ``X-Openstack-Request-Id``), so the cloud's logs about the server carry it too
    request_id: str | None = None
    # checked by the create machine (and a driver, right at its wire) around the create
    fence: Fence | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LabelInfo:
    """Connection facts a driver knows about a label before launching it."""

    username: str
    connection_port: int = 22
    host_key_checking: bool | None = None  # None: the provider's setting


class Call:
    """A blocking call submitted to the provider's executor, with a deadline."""

    def __init__(self, future: Future[Any], deadline: float, what: str) -> None:
        self.future = future
        self.deadline = deadline
        self.what = what

    def result(self, now: float) -> Any | None:
        """The result if done (re-raising its error), None while running, or time out."""
        if self.future.done():
            return self.future.result()
        if now > self.deadline:
            self.future.cancel()
            raise ProviderUnavailable(f"{self.what}: no answer within the call timeout")
        return None


class StateMachine(abc.ABC):
    START = "start"
    COMPLETE = "complete"
    # Saved by the framework when it lets a launch start, before the first advance():
    # the create may have gone out when the launcher died, so a machine resumed from
    # this state must look for what it made (by node id) before making another.
    SUBMITTING = "submitting"

    def __init__(self, saved: Mapping[str, Any] | None = None) -> None:
        saved = saved or {}
        self.state: str = saved.get("state", self.START)
        self.external_id: str | None = saved.get("external_id")
        self.instance: Instance | None = None

    @property
    def complete(self) -> bool:
        return self.state == self.COMPLETE

    @abc.abstractmethod
    def advance(self) -> None:
        """Take the next step if it is ready; never blocks. Raises LaunchError."""

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "external_id": self.external_id}


class Adapter(abc.ABC):
    # True when the driver hands out fixed resources (static hosts): the framework then
    # reserves one per node when it creates the node (``reserve``) and tells the driver
    # on every loop pass which node holds which (``recover``), from the shared store.
    tracks_allocations = False

    def __init__(self, provider: ProviderBase, executor: Executor, clock: Clock) -> None:
        self.provider = provider
        self.executor = executor
        self.clock = clock

    def call(self, fn: Callable[..., T], *args: Any, what: str = "") -> Call:
        fut = self.executor.submit(fn, *args)
        deadline = self.clock.monotonic() + self.provider.health.call_timeout
        return Call(fut, deadline, what or getattr(fn, "__name__", "call"))

    @abc.abstractmethod
    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine: ...

    @abc.abstractmethod
    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine: ...

    @abc.abstractmethod
    def list_instances(self) -> list[Instance]:
        """Every instance in the provider (ours and others'); blocking."""

    @abc.abstractmethod
    def quota_limits(self) -> Resources:
        """The provider's limits (unlimited = inf); blocking."""

    @abc.abstractmethod
    def label_resources(self, label: str) -> Resources:
        """What one node of ``label`` uses; blocking (may look up a flavor)."""

    @abc.abstractmethod
    def label_info(self, label: str) -> LabelInfo: ...

    def label_capacity(self, label: str) -> int | None:
        """Free slots for ``label`` when the driver limits it (static hosts), else None."""
        return None

    def reserve(self, label: str, taken: Collection[str]) -> str | None:
        """The external id a new ``label`` node will use, chosen now among those not in
        ``taken`` (static hosts); None for drivers whose backend picks (servers)."""
        return None

    def recover(self, allocations: Mapping[str, str]) -> None:  # noqa: B027
        """Told which node (key) holds or has reserved which external id: at start and
        on every loop pass when ``tracks_allocations`` (from the store every launcher
        shares, so an allocation another launcher made or freed is seen)."""

    def close(self) -> None:  # noqa: B027
        """Release backend connections."""


__all__ = [
    "Adapter",
    "Call",
    "Fence",
    "Instance",
    "LabelInfo",
    "LaunchError",
    "LaunchSpec",
    "StateMachine",
]
