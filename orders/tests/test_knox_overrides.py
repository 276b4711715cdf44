"""orders.api.authentication.TokenAuthentication re-implements two methods of
django-rest-knox's (pinned in requirements/base.txt), one of them private. These tests
notice an upgrade that changes knox's versions, so the overrides are re-read against them.
"""

import hashlib
import inspect
from importlib.metadata import version

import pytest
from knox.auth import TokenAuthentication as KnoxTokenAuthentication

# sha256 of inspect.getsource(knox.auth.TokenAuthentication.<method>) in the pinned knox.
RECORDED = {
    "_cleanup_token": "9d72d60a8a15ca90301a18a9f53742873927656d1d3c71fe7b98e0d32706d9e6",
    "authenticate_credentials": "9ee8f829395d3547ed79b01b2b58126add48cec33557a5828fa496ca7cf576e0",
}
WHAT_TO_RECHECK = {
    "_cleanup_token": (
        "ours deletes only the expired token in hand (knox also scanned the user's other tokens, a "
        "query per request) and sends token_expired(username=..., source='auth_token'); keep any "
        "new rule of knox's about expiry, deletion or the signal"
    ),
    "authenticate_credentials": (
        "ours is knox's loop (tokens by key prefix, _cleanup_token, hash_token + compare_digest, "
        "AUTO_REFRESH renew_token, validate_user) over one SQL query that also loads the client's "
        "scope, refusing keys that are not UTF-8 with 401; copy any new step of knox's into it"
    ),
}


def knox_method_changed(name: str) -> str | None:
    """Why knox's `name` needs the override re-read, or None while it is the recorded one."""
    source = inspect.getsource(getattr(KnoxTokenAuthentication, name))
    digest = hashlib.sha256(source.encode()).hexdigest()
    if digest == RECORDED[name]:
        return None
    return (
        f"knox.auth.TokenAuthentication.{name} changed (django-rest-knox {version('django-rest-knox')}). "
        f"Re-check orders.api.authentication.TokenAuthentication.{name} against it: {WHAT_TO_RECHECK[name]}. "
        f"Then record its new sha256 here: {digest}"
    )


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_knox_method_we_override_is_the_one_the_override_was_written_against(name):
    assert knox_method_changed(name) is None, knox_method_changed(name)


def test_a_changed_knox_method_is_reported_with_what_to_recheck(monkeypatch):
    # given an upgrade whose _cleanup_token differs from the recorded one
    def _cleanup_token(self, auth_token):
        return False

    monkeypatch.setattr(KnoxTokenAuthentication, "_cleanup_token", _cleanup_token)

    message = knox_method_changed("_cleanup_token")

    assert message is not None
    assert "Re-check orders.api.authentication.TokenAuthentication._cleanup_token" in message
    assert f"django-rest-knox {version('django-rest-knox')}" in message
