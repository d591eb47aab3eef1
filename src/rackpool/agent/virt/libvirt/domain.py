"""Libvirt domain XML for one instance, and reading our ownership mark back from it."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

METADATA_NS = "https://rackpool.dev/xmlns/libvirt/instance/1"


@dataclass(frozen=True)
class DomainSpec:
    name: str
    instance_id: str
    instance_name: str
    domain_type: str
    machine: str
    emulator: str | None
    vcpus: int
    ram_mb: int
    disk: str | None  # qcow2 overlay; None when no disk is created (test driver)
    config_drive: str
    bridge: str
    mac: str
    console_log: str
    kernel: str | None = None  # direct kernel boot (disk = one filesystem, no bootloader)
    initrd: str | None = None
    cmdline: str = ""
    disk_cache: str = "unsafe"
    tb_cache_mb: int = 256  # TCG translation cache (qemu domains only)
    run_as_root: bool = False  # qemu as root: disks live in the agent's 0700 state dir


def metadata_xml(instance_id: str, instance_name: str) -> str:
    """The ``<metadata>`` element marking a domain as ours (also set via setMetadata)."""
    el = ET.Element(f"{{{METADATA_NS}}}instance")
    ET.SubElement(el, f"{{{METADATA_NS}}}id").text = instance_id
    ET.SubElement(el, f"{{{METADATA_NS}}}name").text = instance_name
    return ET.tostring(el, encoding="unicode")


def instance_id_from_metadata(xml: str) -> str | None:
    """The instance id in our metadata element, or None when it is not ours."""
    try:
        el = ET.fromstring(xml)
    except ET.ParseError:
        return None
    found = el.find(f".//{{{METADATA_NS}}}id")
    if found is None:
        found = el.find("id")  # getMetadata returns the element without its namespace
    return found.text if found is not None and found.text else None


def domain_xml(spec: DomainSpec) -> str:
    dom = ET.Element("domain", type=spec.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    if _is_uuid(spec.instance_id):
        ET.SubElement(dom, "uuid").text = spec.instance_id
    ET.SubElement(dom, "title").text = spec.instance_name
    md = ET.SubElement(dom, "metadata")
    md.append(ET.fromstring(metadata_xml(spec.instance_id, spec.instance_name)))
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.ram_mb)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(spec.ram_mb)
    ET.SubElement(dom, "vcpu", placement="static").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine=spec.machine).text = "hvm"
    if spec.kernel:
        ET.SubElement(os_el, "kernel").text = spec.kernel
        if spec.initrd:
            ET.SubElement(os_el, "initrd").text = spec.initrd
        ET.SubElement(os_el, "cmdline").text = spec.cmdline
    else:
        ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    if spec.domain_type == "kvm":
        ET.SubElement(dom, "cpu", mode="host-passthrough")
    elif spec.domain_type == "qemu":
        # TCG: emulate every feature qemu can (the guest kernel picks fast paths) and give
        # the translator a large cache; both halve boot time under TCG here
        ET.SubElement(dom, "cpu", mode="maximum")
        tb = ET.SubElement(ET.SubElement(features, "tcg"), "tb-cache", unit="MiB")
        tb.text = str(spec.tb_cache_mb)
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    if spec.emulator:
        ET.SubElement(devices, "emulator").text = spec.emulator
    if spec.disk:
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="qcow2", cache=spec.disk_cache)
        ET.SubElement(disk, "source", file=spec.disk)
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
    # a read-only virtio disk: Debian's cloud kernel has no SATA/AHCI driver for a cdrom
    cdrom = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(cdrom, "driver", name="qemu", type="raw")
    ET.SubElement(cdrom, "source", file=spec.config_drive)
    ET.SubElement(cdrom, "target", dev="vdb", bus="virtio")
    ET.SubElement(cdrom, "readonly")
    iface = ET.SubElement(devices, "interface", type="bridge")
    ET.SubElement(iface, "mac", address=spec.mac)
    ET.SubElement(iface, "source", bridge=spec.bridge)
    ET.SubElement(iface, "model", type="virtio")
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=spec.console_log)
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="file")
    ET.SubElement(console, "source", path=spec.console_log)
    ET.SubElement(console, "target", type="serial", port="0")
    ET.SubElement(devices, "memballoon", model="none")
    rng = ET.SubElement(devices, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    if spec.run_as_root:
        label = ET.SubElement(dom, "seclabel", type="static", model="dac", relabel="no")
        ET.SubElement(label, "label").text = "+0:+0"
    return ET.tostring(dom, encoding="unicode")


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
