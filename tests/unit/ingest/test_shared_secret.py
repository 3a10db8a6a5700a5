"""How every Git host's receiver refuses a delivery that does not prove it is the host's."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ingest.common import Rejected, SharedSecret, verify_sha256_header

GITHUB = SharedSecret("GitHub", "CAIRN_GITHUB_WEBHOOK_SECRET")
GITLAB = SharedSecret("GitLab", "CAIRN_GITLAB_WEBHOOK_TOKEN", proof="token", secret="Secret token")


def _refusal(rule: SharedSecret, **kwargs) -> str:
    with pytest.raises(Rejected) as refused:
        rule.check(**kwargs)
    assert refused.value.status == 401
    return refused.value.message


def test_without_secrets_only_an_insecure_receiver_accepts() -> None:
    GITHUB.check(False, True, None, "X-Hub-Signature-256", lambda _: False)
    message = _refusal(
        GITHUB, configured=False, insecure=False, header=None, header_name="X", valid=bool
    )
    assert message.startswith("Unsigned deliveries are refused")
    assert "CAIRN_GITHUB_WEBHOOK_SECRET" in message and "--insecure-webhooks" in message
    token = _refusal(
        GITLAB, configured=False, insecure=False, header=None, header_name="X", valid=bool
    )
    assert token.startswith("Deliveries without a token are refused")
    assert "Secret token" in token


def test_with_secrets_every_delivery_proves_itself_even_when_insecure() -> None:
    missing = _refusal(
        GITHUB,
        configured=True,
        insecure=True,
        header=None,
        header_name="X-Hub-Signature-256",
        valid=lambda _: True,
    )
    assert "has no X-Hub-Signature-256 header" in missing
    wrong = _refusal(
        GITLAB,
        configured=True,
        insecure=True,
        header="guess",
        header_name="X-Gitlab-Token",
        valid=lambda _: False,
    )
    assert "X-Gitlab-Token header does not match" in wrong
    assert "CAIRN_GITLAB_WEBHOOK_TOKEN" in wrong
    GITHUB.check(
        True, False, "sha256=ok", "X-Hub-Signature-256", lambda header: header == "sha256=ok"
    )


def test_sha256_headers_are_checked_against_every_secret() -> None:
    body = b'{"ref": "refs/heads/main"}'
    signed = hmac.new(b"new", body, hashlib.sha256).hexdigest()
    assert verify_sha256_header(body, f"sha256={signed}", [b"old", b"new"])
    assert verify_sha256_header(body, f" sha256={signed.upper()} ", [b"new"])
    assert not verify_sha256_header(body, signed, [b"new"])  # the prefix is required
    assert not verify_sha256_header(body + b" ", f"sha256={signed}", [b"new"])
    assert not verify_sha256_header(body, None, [b"new"])
