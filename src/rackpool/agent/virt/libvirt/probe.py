"""Is KVM usable? Decided by booting a guest, not by /dev/kvm being there.

On some machines /dev/kvm exists and libvirt offers ``kvm`` domains, yet KVM guests
hang silently (nested virtualisation without the features the guest needs). The probe
boots a 512-byte boot sector that writes a marker to the serial port under
``<domain type='kvm'>`` with the host-passthrough CPU real guests get (on these
machines qemu then aborts setting MSR 0x10a, as it does for a real guest); only when the marker appears within a few seconds is ``kvm``
chosen, else ``qemu`` (TCG: slower, same code path). The answer is remembered per boot
of the machine (``/proc/sys/kernel/random/boot_id``) in the driver's state dir.
"""

from __future__ import annotations

import json
import logging
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

log = logging.getLogger("rackpool.agent.virt.libvirt")

MARKER = b"RACKPOOL-KVM-OK"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_sector() -> bytes:
    """x86 real-mode code: print MARKER on COM1 (0x3f8), then halt forever."""
    msg_at = 0x7C00 + 22
    code = bytes([
        0xFC,                    # cld
        0x31, 0xC0,              # xor ax, ax
        0x8E, 0xD8,              # mov ds, ax
        0xBA, 0xF8, 0x03,        # mov dx, 0x3f8
        0xBE, msg_at & 0xFF, msg_at >> 8,  # mov si, msg
        0xAC,                    # next: lodsb
        0x84, 0xC0,              # test al, al
        0x74, 0x03,              # jz halt
        0xEE,                    # out dx, al
        0xEB, 0xF8,              # jmp next
        0xF4,                    # halt: hlt
        0xEB, 0xFD,              # jmp halt
    ])  # fmt: skip
    assert len(code) == 22
    body = code + MARKER + b"\r\n\0"
    return body + b"\0" * (510 - len(body)) + b"\x55\xaa"


def probe_xml(domain_type: str, name: str, disk: Path, console: Path) -> str:
    dom = ET.Element("domain", type=domain_type)
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="MiB").text = "16"
    ET.SubElement(dom, "vcpu").text = "1"
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "boot", dev="hd")
    if domain_type == "kvm":  # the CPU real guests get (here KVM fails on its MSRs)
        ET.SubElement(dom, "cpu", mode="host-passthrough")
    devices = ET.SubElement(dom, "devices")
    d = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(d, "driver", name="qemu", type="raw")
    ET.SubElement(d, "source", file=str(disk))
    ET.SubElement(d, "target", dev="hda", bus="ide")
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=str(console))
    ET.SubElement(devices, "memballoon", model="none")
    label = ET.SubElement(dom, "seclabel", type="static", model="dac", relabel="no")
    ET.SubElement(label, "label").text = "+0:+0"
    return ET.tostring(dom, encoding="unicode")


def boots(conn: Any, domain_type: str, work: Path, prefix: str, timeout: float = 15.0) -> bool:
    """True when a ``domain_type`` guest prints the marker within ``timeout`` seconds."""
    work.mkdir(parents=True, exist_ok=True)
    disk, console = work / "probe.img", work / "probe.console"
    disk.write_bytes(boot_sector())
    console.write_bytes(b"")
    name = f"{prefix}probe-{os.getpid()}"
    try:
        dom = conn.createXML(probe_xml(domain_type, name, disk, console), 0)
    except Exception as exc:  # libvirt refuses the domain type: not usable
        log.info("%s probe domain refused: %s", domain_type, exc)
        return False
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if MARKER in console.read_bytes():
                return True
            time.sleep(0.1)
        return False
    finally:
        try:
            dom.destroy()  # transient: gone once stopped
        except Exception as exc:
            log.warning("stopping probe domain %s: %s", name, exc)
        disk.unlink(missing_ok=True)
        console.unlink(missing_ok=True)


def choose_domain_type(conn: Any, work: Path, prefix: str) -> str:
    """``kvm`` if a KVM guest really boots here, else ``qemu``; remembered per machine boot."""
    boot_id = BOOT_ID.read_text().strip() if BOOT_ID.exists() else ""
    memo = work / "domain-type.json"
    if boot_id and memo.exists():
        try:
            seen = dict(json.loads(memo.read_text()))
            if seen.get("boot_id") == boot_id and seen.get("type") in ("kvm", "qemu"):
                return str(seen["type"])
        except ValueError:
            pass
    chosen = "qemu"
    if os.path.exists("/dev/kvm") and "<domain type='kvm'" in conn.getCapabilities():
        chosen = "kvm" if boots(conn, "kvm", work, prefix) else "qemu"
    log.info("domain type %s (KVM %s)", chosen, "boots" if chosen == "kvm" else "not usable")
    if boot_id:
        memo.write_text(json.dumps({"boot_id": boot_id, "type": chosen}))
    return chosen
