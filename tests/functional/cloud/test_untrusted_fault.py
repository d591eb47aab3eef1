"""A fault a user can make a host report is untrusted text: one line, no control or bidi
characters, bounded, whatever the user put in it."""

from __future__ import annotations

from pathlib import Path

from tests.support.postgres import NewDatabase
from tests.support.region import running_region

from rackpool.core.clock import wait_for

FORGED = (
    "disk on fire\n2026-12-03T00:00:00Z ERROR rackpool.cloud host r1-fake2 is down\r"
    "\x1b[2K\x1b[31mred\u202eevil\u200b\x00end"
)


def test_a_users_fault_text_cannot_forge_lines_or_hide_text(
    tmp_path: Path, new_db: NewDatabase
) -> None:
    with running_region(tmp_path, database=new_db()) as region:
        conn = region.connect()
        server = conn.create_server(
            "forger", image="host", flavor="m1.tiny", meta={"rackpool_fake_fault": FORGED}
        )
        got = wait_for(
            lambda: (s := conn.get_server(server.id)) and s.status == "ERROR" and s, 30, "ERROR"
        )
        message = got.fault["message"]
        assert message.startswith("disk on fire ")
        assert "ERROR rackpool.cloud host r1-fake2 is down" in message  # kept, as text
        for bad in ("\n", "\r", "\x1b", "\u202e", "\u200b", "\x00"):
            assert bad not in message
        assert message.endswith("evil end")
