"""X-Hub-Signature-256: HMAC-SHA256 of the raw body, any configured secret, constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ingest.github import verify_signature

BODY = b'{"ref":"refs/heads/main","after":"a1b2c3"}'
SECRET = b"s3cret-webhook-key"


def signature(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_signature_made_with_the_configured_secret_is_valid() -> None:
    assert verify_signature(BODY, signature(BODY, SECRET), [SECRET])


def test_signature_made_with_another_secret_is_invalid() -> None:
    assert not verify_signature(BODY, signature(BODY, b"someone-else"), [SECRET])


def test_signature_of_a_different_body_is_invalid() -> None:
    assert not verify_signature(BODY + b" ", signature(BODY, SECRET), [SECRET])


def test_second_secret_is_accepted_while_rotating() -> None:
    old, new = b"old-secret", b"new-secret"
    assert verify_signature(BODY, signature(BODY, new), [old, new])
    assert verify_signature(BODY, signature(BODY, old), [old, new])


def test_missing_signature_header_is_invalid() -> None:
    assert not verify_signature(BODY, None, [SECRET])


def test_no_configured_secret_validates_nothing() -> None:
    assert not verify_signature(BODY, signature(BODY, SECRET), [])


def test_uppercase_hex_digest_is_accepted() -> None:
    value = signature(BODY, SECRET)
    assert verify_signature(BODY, "sha256=" + value.removeprefix("sha256=").upper(), [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=",
        "sha256=" + "z" * 64,
        "sha256=" + "a" * 63,
        "sha256=" + "a" * 65,
        "SHA256=" + "a" * 64,
        "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest(),
        hmac.new(SECRET, BODY, hashlib.sha256).hexdigest(),  # the digest without "sha256="
        signature(BODY, SECRET) + ",extra",
        "sha256=" + "é" * 64,
    ],
    ids=[
        "empty",
        "no-digest",
        "not-hex",
        "too-short",
        "too-long",
        "wrong-case-prefix",
        "sha1-only",
        "no-prefix",
        "trailing-junk",
        "non-ascii",
    ],
)
def test_malformed_signature_header_is_invalid(header: str) -> None:
    assert not verify_signature(BODY, header, [SECRET])
