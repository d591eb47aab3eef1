"""The ``openstack`` provider: servers through openstacksdk (rackpool regions or any cloud).

The only module of rackpool that imports openstacksdk. SDK and keystoneauth errors
are translated here, at the edge, into the pool's LaunchError family.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import keystoneauth1.exceptions as ks_exc
import openstack.config
import openstack.connection
import openstack.exceptions as os_exc

from rackpool.core.clock import Clock
from rackpool.pool.drivers.interface import Adapter, Instance, LabelInfo, LaunchSpec, StateMachine
from rackpool.pool.drivers.machines import ServerCreate, ServerDelete
from rackpool.pool.drivers.openstack.config import OpenStackLabel, OpenStackProvider
from rackpool.pool.errors import LaunchError, ProviderUnavailable, QuotaError
from rackpool.pool.model import META_NODE, Resources

P = ParamSpec("P")
R = TypeVar("R")


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Map SDK errors to ours: quota, unreachable API, anything else."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except os_exc.HttpException as exc:
            status = exc.status_code or 0
            msg = str(exc.details or exc.message or exc)
            if status in (403, 413) and "quota" in msg.lower():
                raise QuotaError(msg) from exc
            if status >= 500 or status == 429:
                raise ProviderUnavailable(f"API error {status}: {msg}") from exc
            raise LaunchError(f"API error {status}: {msg}") from exc
        except (ks_exc.ConnectionError, ks_exc.http.HttpServerError) as exc:
            raise ProviderUnavailable(f"cannot reach the cloud: {exc}") from exc
        except ks_exc.ClientException as exc:
            raise ProviderUnavailable(f"identity/API failure: {exc}") from exc
        except os_exc.SDKException as exc:
            raise LaunchError(f"openstacksdk: {exc}") from exc

    return wrapper


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
        self._images: dict[str, str] = {}

    # -- connection (lazy, in an executor thread) ------------------------------------
    @property
    def conn(self) -> Any:
        with self._conn_lock:
            if self._conn is None:
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
        return self._flavors[name]

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
        flavor = server.flavor or {}
        fault = (server.fault or {}).get("message", "") if status == "error" else ""
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
            resources=Resources(1, flavor.get("vcpus") or 0, flavor.get("ram") or 0),
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
        return self._instance(self.conn.compute.create_server(**kwargs))

    @translated
    def _get(self, server_id: str) -> Instance | None:
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
        flavor = self._flavor(self._labels[label].flavor_name)
        return Resources(1, flavor.vcpus or 0, flavor.ram or 0)

    # -- framework interface -----------------------------------------------------------
    def create_machine(self, spec: LaunchSpec, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerCreate(
            self, spec, saved, self._create, self._get, self._find, self.provider.poll_interval
        )

    def delete_machine(self, external_id: str, saved: Mapping[str, Any] | None) -> StateMachine:
        return ServerDelete(
            self, external_id, saved, self._delete, self._get, self.provider.poll_interval
        )

    def label_info(self, label: str) -> LabelInfo:
        lab = self._labels[label]
        return LabelInfo(lab.username, lab.connection_port)
