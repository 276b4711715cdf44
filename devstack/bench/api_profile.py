"""python -m devstack.bench api-profile [--creates N] [--path PATH | --cancels] [--top K] [--sort cumulative|tottime]:
where a create's (or a GET's, or a cancel's) CPU goes.

N creates (`POST /api/v1/orders/`, the API bench's body: one item, the customer varied
over 1,000) through Django's whole request handling (middleware, DRF, the service, the
answer) in this process, under cProfile, against the database and Redis this bench's
environment names (e.g. after `set -a; . .dev/env; set +a`); a short warm-up first.
Prints CPU ms per create (this process's, the client included) and the K functions with
the most CPU time, by `--sort` (cProfile timed by process_time: waits on the servers do not
count; the profiler itself makes every call dearer, so read shares, not milliseconds).
gunicorn is not in it: `make bench` measures its CPU per create.
The orders, events and the bench client it made are deleted afterwards.

`--path PATH` profiles N GETs of PATH instead (e.g. `/api/v1/orders/?limit=100`, a list page
over the orders already in the database: the API bench fills them), as the same service client.
`--cancels` profiles N cancels (`POST /api/v1/orders/<id>/cancel/`) of orders it created first,
unprofiled.
"""

import cProfile
import io
import pstats
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from knox.models import AuthToken

from devstack.bench import BenchError, bench_parser
from orders.models import Order
from outbox.models import OutboxEvent

ORDERS = "/api/v1/orders/"
CLIENT_NAME = "bench-api-profile"
BODY = (
    '{{"user_id": "profile-{n}", "currency": "USD", "items": [{{"product_id": "p1", "quantity": 2, "price": "4.50"}}]}}'
)
CANCEL_BODY = '{"reason": "api-profile"}'


def _creates(client: Client, token: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        response = client.post(
            ORDERS, BODY.format(n=n % 1000), content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
        if response.status_code != 201:
            raise BenchError(f"create answered {response.status_code}: {response.content[:300]!r}")


def _gets(client: Client, token: str, path: str, count: int) -> None:
    for _ in range(count):
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
        if response.status_code != 200:
            raise BenchError(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")


def _cancels(client: Client, token: str, order_ids: list[Any]) -> None:
    for order_id in order_ids:
        response = client.post(
            f"{ORDERS}{order_id}/cancel/", CANCEL_BODY, content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token}",
        )  # fmt: skip
        if response.status_code != 200:
            raise BenchError(f"cancel answered {response.status_code}: {response.content[:300]!r}")


def _requests(client: Client, token: str, path: str | None, first: int, count: int) -> None:
    if path:
        _gets(client, token, path, count)
    else:
        _creates(client, token, first, count)


def main(argv: list[str]) -> None:
    parser = bench_parser("api-profile", __doc__)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--path", help="profile GETs of this path (a list page) instead of creates")
    parser.add_argument("--cancels", action="store_true", help="profile cancels of orders created first")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", choices=["cumulative", "tottime"], default="tottime")
    args = parser.parse_args(argv)
    user, _ = get_user_model().objects.get_or_create(username=CLIENT_NAME)
    # A service client, as the API bench's token (create_api_token --service).
    user.user_permissions.add(Permission.objects.get(codename="act_for_any_customer", content_type__app_label="orders"))
    _, token = AuthToken.objects.create(user=user)
    client = Client(SERVER_NAME="127.0.0.1")
    try:
        ids: list[Any] = []
        if args.cancels:
            _creates(client, token, 0, 50 + args.creates)
            ids = list(Order.objects.filter(user_id__startswith="profile-").values_list("id", flat=True))

        def run(first: int, count: int) -> None:
            if args.cancels:
                _cancels(client, token, ids[first : first + count])
            else:
                _requests(client, token, args.path, first, count)

        run(0, 50)
        profile = cProfile.Profile(time.process_time)  # CPU, not the waits on PostgreSQL and Redis
        cpu = time.process_time()
        profile.enable()
        run(50, args.creates)
        profile.disable()
        cpu = time.process_time() - cpu
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
        unit = "cancel" if args.cancels else f"GET {args.path}" if args.path else "create"
        print(f"{args.creates} x {unit}: {cpu / args.creates * 1000:.2f} ms CPU per request under cProfile")
        print(out.getvalue())
    finally:
        ids = list(Order.objects.filter(user_id__startswith="profile-").values_list("id", flat=True))
        OutboxEvent.objects.filter(key__startswith="profile-").delete()
        Order.objects.filter(id__in=ids).delete()
        user.delete()
