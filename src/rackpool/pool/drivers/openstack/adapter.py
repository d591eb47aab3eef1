"""The ``openstack`` provider: servers through openstacksdk (rackpool regions or any cloud).

The only module of rackpool that imports openstacksdk. SDK and keystoneauth errors
are translated here, at the edge, into the pool's LaunchError family.

The SDK is imported on first use, in the provider's executor (the first backend call),
not with this module: ``rackpool pool serve`` answers its API without waiting for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from rackpool.core.clock import Clock
from rackpool.core.text import untrusted_text
from rackpool.pool.drivers.interface import Adapter, Instance, LabelInfo, LaunchSpec, StateMachine
from rackpool.pool.drivers.machines import ServerCreate, ServerDelete
from rackpool.pool.drivers.openstack.config import OpenStackLabel, OpenStackProvider
from rackpool.pool.errors import LaunchError, ProviderUnavailable, QuotaError
from rackpool.pool.model import META_NODE, Resources

log = logging.getLogger("rackpool.pool.drivers.openstack")

P = ParamSpec("P")
R = TypeVar("R")

# openstacksdk's package imports are not safe to run in two threads at once (a thread
# can see a half-imported ``openstack``), and the first calls start side by side.
_SDK_IMPORT = threading.Lock()


def _load_sdk() -> None:
    """Import openstacksdk, once; later calls only find it in ``sys.modules``."""
    with _SDK_IMPORT:
        import keystoneauth1.exceptions  # noqa: F401
        import openstack.config  # noqa: F401
        import openstack.connection  # noqa: F401
        import openstack.exceptions  # noqa: F401


@functools.cache
def _server_with_request_ids() -> Any:
    """openstacksdk's Server with the request id headers as fields: a create sends our
    global request id (``X-Openstack-Request-Id``, honoured by Nova and rackpool regions)
    and reads back the cloud's own id for the call (``x-compute-request-id``)."""
    _load_sdk()
    from openstack import resource
    from openstack.compute.v2 import server

    class ServerWithRequestIds(server.Server):  # type: ignore[misc]
        global_request_id = resource.Header("x-openstack-request-id")
        compute_request_id = resource.Header("x-compute-request-id")

    return ServerWithRequestIds


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Map SDK errors to ours: quota, unreachable API, anything else."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _load_sdk()
        try:
            return fn(*args, **kwargs)
        except LaunchError:
            raise
        except Exception as exc:
            ours = _translate(exc)
            if ours is None:
                raise
            raise ours from exc

    return wrapper


def _translate(exc: Exception) -> LaunchError | None:
    """Our error for an SDK or keystoneauth error; None for anything else."""
    import keystoneauth1.exceptions as ks_exc
    import openstack.exceptions as os_exc

    if isinstance(exc, os_exc.HttpException):
        status = exc.status_code or 0
        msg = str(exc.details or exc.message or exc)
        if status in (403, 413) and "quota" in msg.lower():
            return QuotaError(msg)
        if status >= 500 or status == 429:
            return ProviderUnavailable(f"API error {status}: {msg}")
        return LaunchError(f"API error {status}: {msg}")
    if isinstance(exc, ks_exc.ConnectionError | ks_exc.http.HttpServerError):
        return ProviderUnavailable(f"cannot reach the cloud: {exc}")
    if isinstance(exc, ks_exc.ClientException):
        return ProviderUnavailable(f"identity/API failure: {exc}")
    if isinstance(exc, os_exc.SDKException):
        return LaunchError(f"openstacksdk: {exc}")
    return None


def _limit(value: Any) -> float:
    return float("inf") if value is None or int(value) < 0 else float(value)


class OpenStackAdapter(Adapter):
    provider: OpenStackProvider

    def __init__(self, provider: OpenStackProvider, executor: Executor, clock: Clock) -> None:
        super().__init__(provider, executor, clock)
        self._labels: dict[str, OpenStackLabel] = {
            lab.name: lab for pool in provider.pools for lab in pool.labels
        }
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self._flavors: dict[str, Any] = {}
        self._sizes: dict[str, tuple[int, int]] = {}  # flavor id -> (vCPUs, RAM MiB)
        self._images: dict[str, str] = {}

    # -- connection (lazy, in an executor thread) ------------------------------------
    @property
    def conn(self) -> Any:
        with self._conn_lock:
            if self._conn is None:
                _load_sdk()
                import openstack.config
                import openstack.connection

                if self.provider.clouds_yaml:
                    cfg = openstack.config.OpenStackConfig(
                        config_files=[self.provider.clouds_yaml],
                        vendor_files=[],
                        load_envvars=False,
                    )
                else:
                    cfg = openstack.config.OpenStackConfig(load_envvars=False)
                region = cfg.get_one(
                    cloud=self.provider.cloud,
                    region_name=self.provider.region_name,
                    api_timeout=self.provider.health.call_timeout,
                )
                self._conn = openstack.connection.Connection(config=region)
            return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    # -- lookups -----------------------------------------------------------------------
    def _flavor(self, name: str) -> Any:
        if name not in self._flavors:
            flavor = self.conn.compute.find_flavor(name, ignore_missing=True)
            if flavor is None:
                raise LaunchError(f"flavor {name!r} not found in cloud {self.provider.cloud}")
            self._flavors[name] = flavor
            self._sizes[str(flavor.id)] = (flavor.vcpus or 0, flavor.ram or 0)
        return self._flavors[name]

    def _size(self, flavor: Any) -> Resources:
        """What a server takes of the quota. Before compute microversion 2.47 a server
        names only its flavor's id (a rackpool region does): look it up once per id, so
        servers that are not ours count their vCPUs and RAM as the cloud counts them."""
        vcpus, ram, fid = flavor.get("vcpus"), flavor.get("ram"), flavor.get("id")
        if not vcpus and not ram and fid:  # (openstacksdk makes the missing sizes 0)
            if str(fid) not in self._sizes:
                from openstack import exceptions

                try:
                    found = self.conn.compute.get_flavor(fid)
                    self._sizes[str(fid)] = (found.vcpus or 0, found.ram or 0)
                except (exceptions.NotFoundException, exceptions.ForbiddenException):
                    # deleted or private to another project: counted as an instance only
                    # (never an error that would take the provider out of service)
                    self._sizes[str(fid)] = (0, 0)
            vcpus, ram = self._sizes[str(fid)]
        return Resources(1, vcpus or 0, ram or 0)

    def _image(self, name: str) -> str:
        if name not in self._images:
            image = self.conn.image.find_image(name, ignore_missing=True)
            if image is None:
                raise LaunchError(f"image {name!r} not found in cloud {self.provider.cloud}")
            self._images[name] = image.id
        return self._images[name]

    def _instance(self, server: Any) -> Instance:
        v4 = v6 = private = ""
        addresses = server.addresses or {}
        nets = sorted(addresses.items(), key=lambda kv: kv[0] != "public")
        for _net, addrs in nets:
            for a in addrs or []:
                if a.get("version") == 6:
                    v6 = v6 or a.get("addr", "")
                elif a.get("version", 4) == 4:
                    private = private or a.get("addr", "")
                    v4 = v4 or a.get("addr", "")
        public = server.access_ipv4 or v4
        status = {"ACTIVE": "active", "ERROR": "error"}.get(server.status or "", "building")
        # a cloud's fault text is untrusted: it goes into node records and the public logs
        fault = untrusted_text((server.fault or {}).get("message", "")) if status == "error" else ""
        return Instance(
            external_id=server.id,
            name=server.name or "",
            status=status,
            metadata=dict(server.metadata or {}),
            interface_ip=public,
            public_ipv4=public,
            private_ipv4=private,
            public_ipv6=server.access_ipv6 or v6,
            az=server.availability_zone or "",
            resources=self._size(server.flavor or {}),
            fault=fault,
        )

    # -- blocking backend calls (run in the provider's executor) -----------------------
    @translated
    def _create(self, spec: LaunchSpec) -> Instance:
        lab = self._labels[spec.label]
        kwargs: dict[str, Any] = {
            "name": spec.hostname,
            "image_id": self._image(lab.cloud_image),
            "flavor_id": self._flavor(lab.flavor_name).id,
            "metadata": {**lab.instance_properties, **spec.metadata},
        }
        if lab.key_name:
            kwargs["key_name"] = lab.key_name
        if lab.networks:
            kwargs["networks"] = [{"uuid": n} for n in lab.networks]
        if lab.availability_zone:
            kwargs["availability_zone"] = lab.availability_zone
        if spec.request_id:
            kwargs["global_request_id"] = spec.request_id
        # as conn.compute.create_server does, with the request id headers
        server = _server_with_request_ids().new(connection=self.conn, **kwargs)
        if spec.fence is not None:  # image and flavor looked up: right before the POST
            spec.fence.check()
        server = server.create(self.conn.compute)
        cloud_id = server.compute_request_id or server.global_request_id
        log.info(
            "server %s created for node %s (cloud request %s)",
            server.id,
            spec.node_id,
            cloud_id,
            extra={
                "node_id": spec.node_id, "provider": self.provider.name, "label": spec.label,
                "instance_id": server.id, "global_request_id": spec.request_id,
                "cloud_request_id": cloud_id, "event": "server_created",
            },
        )  # fmt: skip
        return self._instance(server)

    @translated
    def _get(self, server_id: str) -> Instance | None:
        import openstack.exceptions as os_exc

        try:
            return self._instance(self.conn.compute.get_server(server_id))
        except os_exc.NotFoundException:
            return None

    @translated
    def _find(self, node_id: str) -> Instance | None:
        for server in self.conn.compute.servers(details=True):
            if (server.metadata or {}).get(META_NODE) == node_id:
                return self._instance(server)
        return None

    @translated
    def _delete(self, server_id: str) -> None:
        self.conn.compute.delete_server(server_id, ignore_missing=True)

    @translated
    def list_instances(self) -> list[Instance]:
        return [self._instance(s) for s in self.conn.compute.servers(details=True)]

    @translated
    def quota_limits(self) -> Resources:
        absolute = self.conn.compute.get_limits().absolute
        return Resources(
            _limit(absolute.instances), _limit(absolute.total_cores), _limit(absolute.total_ram)
        )

    @translated
    def label_resources(self, label: str) -> Resources:
        lab = self._labels[label]
        flavor = self._flavor(lab.flavor_name)
        # Resolve the image too (read with the quota, before any launch), so a cold
        # start's first creates do not each look it up. Any failure here is the
        # launches' to report (they look again), not the provider's quota read.
        with contextlib.suppress(Exception):
            self._image(lab.cloud_image)
        return Resources(1, flavor.vcpus or 0, flavor.ram or 0)

    # -- framework interface -----------------------------------------------------------
    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerCreate(
            self, spec, saved, self._create, self._get, self._find, self.provider.poll_interval,
            self._delete,
        )  # fmt: skip

    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerDelete(
            self, external_id, saved, self._delete, self._get, self.provider.poll_interval
        )

    def label_info(self, label: str) -> LabelInfo:
        lab = self._labels[label]
        return LabelInfo(lab.username, lab.connection_port)
