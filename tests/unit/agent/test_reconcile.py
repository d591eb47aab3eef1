"""The agent's convergence decisions: pure, no I/O."""

from __future__ import annotations

from rackpool.agent.reconcile import plan, request_ids
from rackpool.agent.virt.base import InstanceState


def e(iid: str, status: str = "BUILD", desired: str = "running") -> dict[str, str]:
    return {"id": iid, "status": status, "desired": desired}


def test_spawns_new_builds_and_skips_busy():
    p = plan([e("a"), e("b")], {}, busy={"b"}, reported=set())
    assert [x["id"] for x in p.spawn] == ["a"]


def test_adopts_running_instances_after_restart_and_reports_them_once():
    actual = {"a": InstanceState("a", True, ("ssh-ed25519 K",))}
    assert plan([e("a", "ACTIVE")], actual, set(), set()).active == ("a",)
    assert plan([e("a", "ACTIVE")], actual, set(), {"a"}).active == ()
    assert plan([e("a", "ERROR")], actual, set(), set()).active == ("a",)


def test_reports_vanished_instances_as_errors():
    p = plan([e("a", "ACTIVE")], {}, set(), set())
    assert p.vanished == (("a", "instance vanished from host"),)
    stopped = {"b": InstanceState("b", False, detail="stopped")}
    assert plan([e("b", "ACTIVE")], stopped, set(), set()).vanished[0][0] == "b"
    assert plan([e("c", "ERROR")], {}, set(), set()) == plan([], {}, set(), set())


def test_destroys_deleted_and_unknown_instances():
    actual = {"a": InstanceState("a", True), "x": InstanceState("x", True)}
    p = plan([e("a", "ACTIVE", "deleted"), e("gone", "ACTIVE", "deleted")], actual, set(), set())
    assert p.destroy == ("a",)
    assert p.deleted == ("gone",)
    assert p.orphans == ("x",)


def test_request_ids_of_an_entry_keep_only_plain_strings() -> None:
    rid, gid = "req-" + "0" * 8 + "-0000-0000-0000-" + "0" * 12, "req-x"
    assert request_ids({"id": "a", "request_id": rid, "global_request_id": gid}) == {
        "request_id": rid,
        "global_request_id": gid,
    }
    # instances from before the region kept them, and odd values, carry none
    assert request_ids({"id": "a", "request_id": None}) == {}
    assert request_ids({"request_id": 5, "global_request_id": "x" * 65}) == {}
    assert request_ids({"request_id": "req-\nforged"}) == {}


def test_a_busy_instance_deleted_meanwhile_is_to_be_cancelled():
    p = plan([e("a", desired="deleted"), e("b")], {}, busy={"a", "b"}, reported=set())
    assert p.cancel == ("a",)
    assert (p.spawn, p.destroy, p.deleted) == ((), (), ())
