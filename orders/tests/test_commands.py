"""manage.py create_api_token NAME [--user-id CUSTOMER | --service] and revoke_api_tokens NAME."""

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from orders.models import ApiClient
from orders.selectors import ClientScope, client_scope
from orders.tests.factories import SEED_PAYLOAD, UserFactory
from tests.support.api import ORDERS_URL, order_url

pytestmark = pytest.mark.django_db


def _run(*args, command="create_api_token"):
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _user(username):
    return get_user_model().objects.get(username=username)


def test_creates_a_bound_user_and_prints_a_new_token():
    # when the command runs for a new name bound to a customer
    out, err = _run("shop-frontend", "--user-id", "user123")

    # then the user exists with no usable password, is bound, and stdout is exactly a 64-character token
    user = _user("shop-frontend")
    token = out.strip()
    assert out == f"{token}\n" and len(token) == 64
    expiry = AuthToken.objects.get().expiry
    assert err == (
        f"created user 'shop-frontend', acts for customer 'user123'; new token {token[:8]}..., "
        f"expires {expiry:%Y-%m-%d %H:%M} UTC:\n"
    )
    assert abs(expiry - (timezone.now() + dt.timedelta(days=90))) < dt.timedelta(minutes=1)
    assert (user.is_staff, user.has_usable_password()) == (False, False)
    assert client_scope(user=user) == ClientScope(any_customer=False, customer_id="user123")


def test_the_token_is_stored_only_as_its_digest():
    out, _ = _run("shop-frontend", "--user-id", "user123")
    token = out.strip()

    stored = AuthToken.objects.get()
    assert stored.digest == hash_token(token)
    assert token not in (stored.digest, stored.token_key)
    assert stored.token_key == token[:15]


def test_the_printed_token_acts_for_the_bound_customer_only():
    out, _ = _run("shop-frontend", "--user-id", "user123")
    client = _client(out.strip())

    mine = client.post(ORDERS_URL, SEED_PAYLOAD, format="json")
    other = client.post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "user999"}, format="json")

    assert (mine.status_code, other.status_code) == (201, 403)


def test_service_flag_grants_acting_for_any_customer_and_drops_a_binding():
    _run("backend", "--user-id", "user123")

    out, err = _run("backend", "--service")

    assert client_scope(user=_user("backend")) == ClientScope(any_customer=True)
    assert ApiClient.objects.count() == 0
    assert ", acts for any customer; new token " in err
    response = _client(out.strip()).post(ORDERS_URL, {**SEED_PAYLOAD, "user_id": "user999"}, format="json")
    assert response.status_code == 201


def test_user_id_takes_the_service_permission_away():
    _run("backend", "--service")

    _run("backend", "--user-id", "user7")

    assert client_scope(user=_user("backend")) == ClientScope(any_customer=False, customer_id="user7")


def test_without_scope_flags_the_scope_is_kept_and_a_new_token_is_added():
    first, _ = _run("shop-frontend", "--user-id", "user123")

    second, err = _run("shop-frontend")

    assert second != first
    assert err.startswith("existing user 'shop-frontend', acts for customer 'user123'; new token ")
    assert AuthToken.objects.count() == 2
    assert get_user_model().objects.filter(username="shop-frontend").count() == 1
    # both tokens work until they expire or are revoked
    assert _client(first.strip()).get(ORDERS_URL).status_code == 200
    assert _client(second.strip()).get(ORDERS_URL).status_code == 200


def test_a_user_with_no_scope_is_told_so():
    _, err = _run("nobody")

    assert ", acts for no customer (give it --user-id or --service); new token " in err


def test_user_id_and_service_exclude_each_other():
    with pytest.raises(CommandError, match="not allowed with argument"):
        _run("x", "--user-id", "u1", "--service")


def test_view_customer_pii_flag_grants_it():
    _run("support", "--service", "--view-customer-pii")

    assert _user("support").has_perm("orders.view_customer_pii") is True


def test_expiry_days_sets_the_expiry_and_zero_means_never():
    _run("a", "--service", "--expiry-days", "7")
    _, err = _run("b", "--service", "--expiry-days", "0")

    expiry = AuthToken.objects.get(user__username="a").expiry
    assert abs(expiry - (timezone.now() + dt.timedelta(days=7))) < dt.timedelta(minutes=1)
    assert AuthToken.objects.get(user__username="b").expiry is None
    assert err.endswith(", never expires:\n")


@pytest.mark.parametrize("days", ["-1", "3651"])
def test_expiry_days_out_of_range_is_refused(days):
    with pytest.raises(CommandError, match="--expiry-days must be 0"):
        _run("a", "--expiry-days", days)


def test_an_expired_token_is_401():
    user = UserFactory.create()
    _, token = AuthToken.objects.create(user=user, expiry=dt.timedelta(seconds=-1))

    response = _client(token).get(ORDERS_URL)

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "message": "Invalid token.", "details": {}}


def test_staff_flag_creates_a_staff_user():
    _, err = _run("ops", "--staff")

    assert _user("ops").is_staff is True
    assert err.startswith("created staff user 'ops', acts for any customer; new token ")


def test_without_the_flag_an_existing_staff_user_stays_staff():
    _run("ops", "--staff")

    _run("ops")

    assert _user("ops").is_staff is True


def test_an_existing_password_is_kept():
    # given a user who logs in to the admin with a password
    user = UserFactory.create(username="admin-person")
    user.set_password("s3cret-Passw0rd")
    user.save()

    _run("admin-person")

    user.refresh_from_db()
    assert user.check_password("s3cret-Passw0rd") is True


def test_revoke_stops_every_token_of_the_user_at_once():
    # given two tokens of one client and one of another
    first, _ = _run("shop", "--service")
    second, _ = _run("shop")
    other, _ = _run("backend", "--service")

    # when the first client's tokens are revoked
    out, _ = _run("shop", command="revoke_api_tokens")

    # then its tokens are refused, the other client's still works, and the user keeps its scope
    assert out == "revoked 2 tokens of 'shop'\n"
    assert _client(first.strip()).get(ORDERS_URL).status_code == 401
    assert _client(second.strip()).get(ORDERS_URL).status_code == 401
    assert _client(other.strip()).get(ORDERS_URL).status_code == 200
    assert client_scope(user=_user("shop")) == ClientScope(any_customer=True)


def test_revoke_one_token_by_its_prefix():
    old, _ = _run("shop", "--service")
    new, _ = _run("shop")

    out, _ = _run("shop", "--token", old[:8], command="revoke_api_tokens")

    assert out == "revoked 1 token of 'shop'\n"
    assert _client(old.strip()).get(ORDERS_URL).status_code == 401
    assert _client(new.strip()).get(ORDERS_URL).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ghost"], "No user 'ghost'."),
        (["shop", "--token", "abc"], "--token needs at least the first 8 characters"),
        (["shop", "--token", "zzzzzzzz"], "User 'shop' has no token starting with 'zzzzzzzz'."),
    ],
)
def test_revoke_refuses_what_it_cannot_find(args, message):
    _run("shop", "--service")

    with pytest.raises(CommandError, match=message):
        _run(*args, command="revoke_api_tokens")


def test_the_admin_lists_tokens_without_their_secret(admin_client):
    # given a token made by the command
    out, _ = _run("shop", "--service")
    token = out.strip()
    stored = AuthToken.objects.get()

    # when staff open the token list and the token's page
    listing = admin_client.get("/admin/knox/authtoken/")
    page = admin_client.get(f"/admin/knox/authtoken/{stored.pk}/change/")

    # then neither shows the token (only knox's one-way digest and 15-character lookup prefix exist)
    assert (listing.status_code, page.status_code) == (200, 200)
    assert token not in listing.content.decode()
    assert token not in page.content.decode()
    assert stored.token_key not in listing.content.decode() + page.content.decode()
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_staff_can_revoke_a_token_in_the_admin_but_not_make_or_edit_one(admin_client):
    out, _ = _run("shop", "--service")
    stored = AuthToken.objects.get()

    add = admin_client.get("/admin/knox/authtoken/add/")
    edit = admin_client.post(f"/admin/knox/authtoken/{stored.pk}/change/", {"expiry": ""})
    revoked = admin_client.post(f"/admin/knox/authtoken/{stored.pk}/delete/", {"post": "yes"})

    assert (add.status_code, edit.status_code, revoked.status_code) == (403, 403, 302)
    assert not AuthToken.objects.exists()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.strip()}")
    assert client.get(ORDERS_URL).status_code == 401


def test_a_token_that_is_not_utf8_is_401_not_500():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token \xe9\xe9\xe9")

    response = client.get(order_url("8d3c1f1e-0000-4000-8000-000000000000"))

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
