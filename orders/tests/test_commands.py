"""manage.py create_api_token USERNAME [--staff]."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.tests.conftest import ORDERS_URL
from orders.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_creates_the_user_and_prints_its_token():
    # when the command runs for a new name
    out, err = _run("shop-frontend")

    # then the user exists, has no usable password, and stdout is exactly its token
    user = get_user_model().objects.get(username="shop-frontend")
    token = Token.objects.get(user=user)
    assert out == f"{token.key}\n"
    assert err == "created user 'shop-frontend'; token:\n"
    assert (user.is_staff, user.has_usable_password()) == (False, False)


def test_the_printed_token_authenticates_against_the_api():
    out, _ = _run("shop-frontend")

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.strip()}")
    assert client.get(ORDERS_URL).status_code == 200


def test_running_twice_prints_the_same_token_and_creates_nothing_new():
    first, _ = _run("shop-frontend")
    second, err = _run("shop-frontend")

    assert second == first
    assert err == "existing user 'shop-frontend'; token:\n"
    assert get_user_model().objects.filter(username="shop-frontend").count() == 1
    assert Token.objects.count() == 1


def test_staff_flag_creates_a_staff_user():
    out, err = _run("ops", "--staff")

    user = get_user_model().objects.get(username="ops")
    assert user.is_staff is True
    assert out == f"{Token.objects.get(user=user).key}\n"
    assert err == "created staff user 'ops'; token:\n"


def test_staff_flag_promotes_an_existing_user_and_keeps_its_token():
    first, _ = _run("ops")

    second, _ = _run("ops", "--staff")

    assert second == first
    assert get_user_model().objects.get(username="ops").is_staff is True


def test_without_the_flag_an_existing_staff_user_stays_staff():
    _run("ops", "--staff")

    _run("ops")

    assert get_user_model().objects.get(username="ops").is_staff is True


def test_an_existing_password_is_kept():
    # given a user who logs in to the admin with a password
    user = UserFactory.create(username="admin-person")
    user.set_password("s3cret-Passw0rd")
    user.save()

    _run("admin-person")

    user.refresh_from_db()
    assert user.check_password("s3cret-Passw0rd") is True
