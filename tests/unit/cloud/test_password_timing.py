"""Login for an unknown user does the same password-hash work as a wrong password
(bench/login_timing.py prints the two times): the dummy hash it is checked against has
the shape of a real one, so check_password runs the full scrypt, and nothing matches it."""

from __future__ import annotations

from rackpool.cloud.identity import DUMMY_PASSWORD_HASH, check_password, hash_password


def test_the_dummy_hash_is_shaped_like_a_real_one() -> None:
    real = hash_password("some-password")
    assert [len(p) for p in DUMMY_PASSWORD_HASH.split("$")] == [len(p) for p in real.split("$")]
    assert DUMMY_PASSWORD_HASH.split("$")[0] == real.split("$")[0] == "scrypt"


def test_no_password_matches_the_dummy_hash() -> None:
    for password in ("", "admin", "wrong-password-123", "\x00"):
        assert check_password(password, DUMMY_PASSWORD_HASH) is False
