"""Known-bug signature files load (ours and elastic-recheck's format) and classify failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from rackpool.core.clock import ManualClock
from rackpool.ops.classify import Classifier
from rackpool.ops.errors import SignatureError
from rackpool.ops.failures import FailureStore
from rackpool.ops.index import LogDoc
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.signatures import builtin_dir, load_signature, load_signatures

T0 = 1_700_000_000.0


def test_builtin_signatures_load() -> None:
    bugs = {s.bug for s in load_signatures([builtin_dir()])}
    assert {
        "rackpool-quota-exceeded",
        "rackpool-boot-timeout",
        "rackpool-host-down",
        "rackpool-image-fetch-failure",
        "rackpool-ssh-keyscan-failure",
    } <= bugs


def test_elastic_recheck_format(tmp_path: Path) -> None:
    f = tmp_path / "1331274.yaml"
    f.write_text(
        'query: >\n  message:"java.io.IOException: Connection reset by peer" AND\n'
        '  tags:"console"\nsuppress-graph: true\nallow-nonvoting: true\n'
    )
    sig = load_signature(f)
    assert sig.bug == "1331274" and sig.suppress_graph and sig.allow_nonvoting
    assert not sig.suppress_notification


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("query: 'a AND'\n", "query syntax error"),
        ("querry: x\n", "unknown key(s) querry"),
        ("suppress-graph: true\n", "'query' is missing"),
        ("query: x\nsuppress-graph: maybe\n", "must be true or false"),
        ("query: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "good.yaml").write_text("query: fine\n")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SignatureError) as info:
        load_signatures([tmp_path])
    assert "bad.yaml" in str(info.value) and words in str(info.value)
    assert "good.yaml" not in str(info.value)


def test_classifier_matches_failures_and_counts_hits(tmp_path: Path) -> None:
    clock = ManualClock(T0 + 3600)
    index = SqliteIndex(tmp_path / "ix")
    store = FailureStore(tmp_path / "failures.db")
    classifier = Classifier(index, store, load_signatures([builtin_dir()]), clock=clock)
    docs = [
        {"event": "launch_failed", "node_id": "n1", "message": "Quota exceeded for cores"},
        {"event": "node_failed", "node_id": "n2", "message": "Timeout waiting for instance boot"},
        {"event": "node_failed", "node_id": "n3", "message": "flux capacitor melted"},
        {"level": "INFO", "node_id": "n4", "message": "Quota exceeded but not a failure line"},
        {
            "build_uuid": "b1",
            "build_status": "FAILURE",
            "message": "ssh-keyscan failed for 10.0.0.9",
        },
        {"build_uuid": "b2", "build_status": "SUCCESS", "message": "ssh-keyscan failed, retried"},
    ]
    index.add([LogDoc(T0 + i, "t", i, d) for i, d in enumerate(docs)])
    done = {f.key: f.bugs for f in classifier.run_once()}
    assert done == {
        "node:n1": ("rackpool-quota-exceeded",),
        "node:n2": ("rackpool-boot-timeout",),
        "node:n3": (),
        "build:b1": ("rackpool-ssh-keyscan-failure",),
    }
    assert classifier.run_once() == []  # nothing new, nothing redone
    assert [f.key for f in store.recent(uncategorized=True)] == ["node:n3"]
    stats = {b.signature.bug: b for b in classifier.bug_stats()}
    quota = stats["rackpool-quota-exceeded"]
    assert (quota.fails, quota.fails_24h) == (1, 1)
    assert quota.hourly == (((T0 // 3600) * 3600, 1),)
    clock.advance(2 * 86400)
    assert classifier.bug_stats()[0].fails_24h == 0
    store.close()
    index.close()


def test_builtin_signatures_recognise_what_rackpool_itself_says(tmp_path: Path) -> None:
    """Fault texts made by the real code paths, as the pool logs them for a failed launch."""
    from rackpool.agent.errors import ImageError as AgentImageError
    from rackpool.agent.images import ImageCache, fetch_failure
    from rackpool.core.instance import ImageSpec
    from rackpool.pool.errors import KeyscanError
    from rackpool.pool.keyscan import SshKeyscan

    with pytest.raises(AgentImageError) as no_image:
        ImageCache(tmp_path / "cache", None).prepare(ImageSpec(id="img-1", name="img"), "rootfs")
    with pytest.raises(KeyscanError) as no_keyscan:
        SshKeyscan(binary=str(tmp_path / "no-such-ssh-keyscan")).scan("127.0.0.1", 22, 1)
    said = {
        "n-img": fetch_failure("img-1", no_image.value).message,
        "n-scan": no_keyscan.value.message,
    }
    clock = ManualClock(T0 + 60)
    index = SqliteIndex(tmp_path / "ix")
    classifier = Classifier(
        index, FailureStore(tmp_path / "f.db"), load_signatures([builtin_dir()]), clock=clock
    )
    index.add(
        [
            LogDoc(T0 + i, "pool", i, {"event": "launch_failed", "node_id": node, "message":
                   f"launch of node {node} failed (attempt 1 of 3): server x failed: {text}"})
            for i, (node, text) in enumerate(said.items())
        ]
    )  # fmt: skip
    done = {f.key: f.bugs for f in classifier.run_once()}
    assert done == {
        "node:n-img": ("rackpool-image-fetch-failure",),
        "node:n-scan": ("rackpool-ssh-keyscan-failure",),
    }, said
