"""The "commerce" sandbox: an OroCommerce-style JSON:API backend with OAuth2 client credentials.

It is the target a sync writes shop customers into. Routes:

- `POST /oauth2-token`: the client credentials grant (see `_oauth`); answers
  `{"access_token", "token_type": "Bearer", "expires_in"}`.
- Everything under `/api` needs `Authorization: Bearer <access token>`; an unknown or
  expired token is a 401 with `WWW-Authenticate: Bearer realm="commerce",
  error="invalid_token"`. Answers are `application/vnd.api+json`.
- `GET /api/customers?page[number]=&page[size]=&filter[email]=&filter[updated_since]=`
  -> `{"data": [resource...], "links": {"self", "first", "prev"?, "next"?, "last"},
  "meta": {"total": N}}`, sorted by id; `page[size]` defaults to 100, capped at 1000;
  `filter[email]` matches case-insensitively; links are absolute.
- `GET /api/customers/{id}` -> `{"data": resource, "links": {"self"}}`.
- `POST /api/customers` with `{"data": {"type": "customers", "attributes": {...},
  "relationships": {"owner": ...}?}}` -> 201, the document and an absolute `Location`.
  `Idempotency-Key` replays the first answer (`Idempotent-Replayed: true`).
- `PATCH /api/customers/{id}` with `{"data": {"type": "customers", "id": "7",
  "attributes": {...}}}` -> 200; only the given attributes change, `updated_at` is now.
- `DELETE /api/customers/{id}` -> 204.

A resource is `{"type": "customers", "id": "7", "attributes": {email, first_name,
last_name, company, phone, street, city, country, external_id, created_at, updated_at},
"relationships": {"owner": {"data": {"type": "users", "id": "1"}}}, "links": {"self"}}`.
Writable attributes are strings (`external_id` may be null); `created_at` and
`updated_at` are read-only; owners are users "1" to "3".

Errors are JSON:API error objects: 400 for a body that is not JSON or not a document
(`source.pointer` names the bad part), 415 for a content type other than
`application/vnd.api+json` or `application/json`, 409 for a wrong `type` or an `id` that
differs from the URL, 403 for a client-generated id on create, 404 for an unknown id, and
422 for invalid attributes: `required`, `invalid`, `unknown_attribute`, `read_only`,
`unique` (email taken), each pointing at `/data/attributes/<name>`.

The store starts with `records` generated customers. The first `overlap` of them are
shop customers `1..overlap` of the same seed (same email, names, company, phone and
address), so a sync can match them by email; the others have emails no shop customer has.

Without auth, limits or faults: `GET /_stats` (`creates`, `updates`, `deletes`,
`tokens_issued`, `unauthorized`, `rate_limited`, `faults`, ...), `POST /_reset` (data and
counters; issued tokens stay valid) and `POST /_touch` with
`{"resource": "customers", "ids": [...]}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypedDict, cast

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._admin import SandboxStats, StatsMiddleware, admin_routes, touch_response
from ._data import make_customer
from ._faults import FaultConfig, FaultMiddleware, FaultPlan
from ._idempotency import IdempotencyKeyReusedError, IdempotencyStore
from ._jsonapi import JSONAPI_MEDIA_TYPE, JsonApiError, JsonApiResponse, error_object
from ._oauth import BearerTokenMiddleware, ClientCredentialsIssuer
from ._pagination import page_size, query_int, since_param, total_pages, url_with
from ._ratelimit import RateLimitMiddleware, TokenBucket
from ._store import BaseRecordStore, IdIndex, now_timestamp

__all__ = [
    "CommerceCustomer",
    "CommerceCustomerStore",
    "create_commerce_app",
    "make_commerce_customer",
]

TOKEN_PATH = "/oauth2-token"
OWNERS = ("1", "2", "3")

_WRITABLE = (
    "email",
    "first_name",
    "last_name",
    "company",
    "phone",
    "street",
    "city",
    "country",
    "external_id",
)
_READ_ONLY = ("created_at", "updated_at")
# Generated emails end in "<id>@domain"; the id finds the one record that may have it.
_EMAIL_ID = re.compile(r"(\d+)@")
# Commerce-only customers come from another seed and another domain than the shop's.
_OWN_SEED_SALT = 0xC0FFEE


class CommerceCustomer(TypedDict):
    id: int
    email: str
    first_name: str
    last_name: str
    company: str
    phone: str
    street: str
    city: str
    country: str
    external_id: str | None
    owner_id: str
    created_at: str
    updated_at: str


def make_commerce_customer(seed: int, customer_id: int, overlap: int) -> CommerceCustomer:
    """Customer `customer_id` of the commerce store for `seed` with `overlap` shop matches."""
    shared = customer_id <= overlap
    base = make_customer(seed if shared else seed ^ _OWN_SEED_SALT, customer_id)
    email = base["email"] if shared else base["email"].removesuffix(".example") + ".b2b.example"
    return {
        "id": customer_id,
        "email": email,
        "first_name": base["first_name"],
        "last_name": base["last_name"],
        "company": base["company"],
        "phone": base["phone"],
        "street": base["address"]["street"],
        "city": base["address"]["city"],
        "country": base["address"]["country"],
        "external_id": None,
        "owner_id": OWNERS[customer_id % len(OWNERS)],
        "created_at": base["created_at"],
        "updated_at": base["updated_at"],
    }


class CommerceCustomerStore(BaseRecordStore[CommerceCustomer]):
    """Generated commerce customers `1..records` plus changes, with lookup by email."""

    def __init__(self, *, records: int, seed: int, overlap: int) -> None:
        if records < 0 or overlap < 0:
            raise ValueError("records and overlap must not be negative")
        super().__init__()
        self.records = records
        self.seed = seed
        self.overlap = min(overlap, records)
        # Lower-cased email -> id, for records written through the API; entries go stale
        # when an email changes, so a hit is checked against the record.
        self._emails: dict[str, int] = {}

    def _generated_ids(self) -> IdIndex:
        return range(1, self.records + 1)

    def _is_generated(self, record_id: int) -> bool:
        return 1 <= record_id <= self.records

    def _generate(self, record_id: int) -> CommerceCustomer:
        return make_commerce_customer(self.seed, record_id, self.overlap)

    def _first_free_id(self) -> int:
        return self.records + 1

    def put(self, record: CommerceCustomer) -> CommerceCustomer:
        self._emails[record["email"].lower()] = record["id"]
        return super().put(record)

    def add(self, build: Callable[[int], CommerceCustomer]) -> CommerceCustomer:
        record = super().add(build)
        self._emails[record["email"].lower()] = record["id"]
        return record

    def reset(self) -> None:
        super().reset()
        self._emails.clear()

    def find_by_email(self, email: str) -> CommerceCustomer | None:
        wanted = email.lower()
        record_id = self._emails.get(wanted)
        if record_id is not None:
            record = self.get(record_id)
            if record is not None and record["email"].lower() == wanted:
                return record
        match = _EMAIL_ID.search(wanted)
        if match is not None:
            record_id = int(match.group(1))
            if (
                self._is_generated(record_id)
                and record_id not in self._overrides
                and record_id not in self._deleted
            ):
                record = self._generate(record_id)
                if record["email"] == wanted:
                    return record
        return None


def _resource(record: CommerceCustomer, self_url: str) -> dict[str, Any]:
    attributes = {name: value for name, value in record.items() if name not in ("id", "owner_id")}
    return {
        "type": "customers",
        "id": str(record["id"]),
        "attributes": attributes,
        "relationships": {"owner": {"data": {"type": "users", "id": record["owner_id"]}}},
        "links": {"self": self_url},
    }


def _check_media_type(request: Request) -> None:
    media_type, *parameters = request.headers.get("content-type", "").split(";")
    media_type = media_type.strip().lower()
    names = {parameter.split("=")[0].strip().lower() for parameter in parameters if parameter}
    # JSON:API §content-negotiation: only the ext and profile parameters are allowed.
    if media_type == JSONAPI_MEDIA_TYPE and names <= {"ext", "profile"}:
        return
    if media_type == "application/json":
        return
    raise JsonApiError.single(
        415, "unsupported_media_type", f"Send the document as {JSONAPI_MEDIA_TYPE}."
    )


def _document(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise JsonApiError.single(400, "malformed", "The body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise JsonApiError.single(
            400, "malformed", "The body must be a document with a data object.", pointer="/data"
        )
    data: dict[str, Any] = body["data"]
    if "type" not in data:
        raise JsonApiError.single(400, "malformed", "type is required.", pointer="/data/type")
    if data["type"] != "customers":
        raise JsonApiError.single(
            409, "conflict", "This endpoint takes customers.", pointer="/data/type"
        )
    for member in ("attributes", "relationships"):
        if member in data and not isinstance(data[member], dict):
            raise JsonApiError.single(
                400, "malformed", f"{member} must be an object.", pointer=f"/data/{member}"
            )
    return data


class _CommerceApi:
    """The state of one commerce app and its route handlers."""

    def __init__(
        self,
        store: CommerceCustomerStore,
        stats: SandboxStats,
        bucket: TokenBucket | None,
        plan: FaultPlan | None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.bucket = bucket
        self.plan = plan
        self.idempotent = IdempotencyStore()

    def reset(self) -> None:
        self.store.reset()
        self.stats.reset()
        self.idempotent.clear()
        if self.bucket is not None:
            self.bucket.reset()
        if self.plan is not None:
            self.plan.reset()

    @staticmethod
    def _collection_url(request: Request) -> str:
        path = request.url.path
        if "customer_id" in request.path_params:
            path = path.rsplit("/", 1)[0]
        return str(request.url.replace(path=path, query=""))

    def _one(self, request: Request, record: CommerceCustomer, status: int = 200) -> Response:
        url = f"{self._collection_url(request)}/{record['id']}"
        headers = {"Location": url} if status == 201 else None
        document = {"data": _resource(record, url), "links": {"self": url}}
        return JsonApiResponse(document, status_code=status, headers=headers)

    def _existing(self, request: Request) -> CommerceCustomer:
        raw_id: str = request.path_params["customer_id"]
        record = self.store.get(int(raw_id)) if raw_id.isdigit() else None
        if record is None:
            raise JsonApiError.single(404, "not_found", f"No customer with id {raw_id}.")
        return record

    async def list_customers(self, request: Request) -> Response:
        number = query_int(request, "page[number]", 1, minimum=1)
        size = page_size(request, "page[size]")
        since = since_param(request, "filter[updated_since]")
        email = request.query_params.get("filter[email]")
        if email is not None:
            found = self.store.find_by_email(email)
            matches = [found] if found and (since is None or found["updated_at"] >= since) else []
            total = len(matches)
            records = matches[(number - 1) * size : number * size]
        else:
            total = self.store.count(since)
            records = self.store.page((number - 1) * size, size, since)
        base = self._collection_url(request)
        pages = max(total_pages(total, size), 1)
        links = {"self": str(request.url), "first": url_with(request, **{"page[number]": 1})}
        if number > 1:
            links["prev"] = url_with(request, **{"page[number]": min(number - 1, pages)})
        if number < pages:
            links["next"] = url_with(request, **{"page[number]": number + 1})
        links["last"] = url_with(request, **{"page[number]": pages})
        return JsonApiResponse(
            {
                "data": [_resource(record, f"{base}/{record['id']}") for record in records],
                "links": links,
                "meta": {"total": total},
            }
        )

    async def get_customer(self, request: Request) -> Response:
        return self._one(request, self._existing(request))

    async def create_customer(self, request: Request) -> Response:
        raw = await request.body()
        key = request.headers.get("idempotency-key")
        # No await between the lookup and storing the answer (see _idempotency).
        if key is not None:
            try:
                stored = self.idempotent.find(key, raw)
            except IdempotencyKeyReusedError:
                return JsonApiError.single(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request body.",
                ).response()
            if stored is not None:
                self.stats.idempotent_replays += 1
                return stored.replay()
        try:
            _check_media_type(request)
            data = _document(raw)
            if "id" in data:
                raise JsonApiError.single(
                    403,
                    "client_generated_id",
                    "Ids are assigned by the server.",
                    pointer="/data/id",
                )
            changes = self._validate(data, None)
        except JsonApiError as error:
            response = error.response()
        else:
            now = now_timestamp()
            fields: dict[str, Any] = dict.fromkeys(_WRITABLE, "")
            fields.update(external_id=None, owner_id=OWNERS[0], created_at=now, updated_at=now)
            fields.update(changes)
            record = self.store.add(lambda new_id: cast(CommerceCustomer, {**fields, "id": new_id}))
            self.stats.creates += 1
            response = self._one(request, record, status=201)
        if key is not None:
            headers = (
                {"Location": response.headers["location"]} if response.status_code == 201 else {}
            )
            self.idempotent.remember(key, raw, response, headers)
        return response

    async def patch_customer(self, request: Request) -> Response:
        raw = await request.body()
        _check_media_type(request)
        current = self._existing(request)
        data = _document(raw)
        if "id" not in data:
            raise JsonApiError.single(400, "malformed", "id is required.", pointer="/data/id")
        if data["id"] != str(current["id"]):
            raise JsonApiError.single(
                409, "conflict", "The id differs from the URL's.", pointer="/data/id"
            )
        changes = self._validate(data, current["id"])
        changed = {**current, **changes, "updated_at": now_timestamp()}
        record = self.store.put(cast(CommerceCustomer, changed))
        self.stats.updates += 1
        return self._one(request, record)

    async def delete_customer(self, request: Request) -> Response:
        record = self._existing(request)
        self.store.delete(record["id"])
        self.stats.deletes += 1
        return Response(status_code=204)

    def _validate(self, data: dict[str, Any], record_id: int | None) -> dict[str, Any]:
        """The attribute and owner changes of a valid document; JsonApiError(422) if not."""
        attributes: dict[str, Any] = data.get("attributes", {})
        errors: list[dict[str, Any]] = []

        def fail(code: str, name: str, detail: str, member: str = "attributes") -> None:
            errors.append(error_object(422, code, detail, pointer=f"/data/{member}/{name}"))

        for name, value in attributes.items():
            if name in _READ_ONLY:
                fail("read_only", name, f"{name} is set by the server.")
            elif name not in _WRITABLE:
                fail("unknown_attribute", name, f"customers have no attribute {name}.")
            elif not isinstance(value, str) and not (name == "external_id" and value is None):
                fail("invalid", name, f"{name} must be a string.")
        email = attributes.get("email")
        if record_id is None and "email" not in attributes:
            fail("required", "email", "email is required.")
        elif "email" in attributes and isinstance(email, str):
            if "@" not in email:
                fail("invalid", "email", "email must be an email address.")
            else:
                holder = self.store.find_by_email(email)
                if holder is not None and holder["id"] != record_id:
                    fail("unique", "email", f"Another customer already has the email {email}.")
        changes = {name: attributes[name] for name in _WRITABLE if name in attributes}
        relationships: dict[str, Any] = data.get("relationships", {})
        for name, value in relationships.items():
            linkage = value.get("data") if isinstance(value, dict) else None
            if name != "owner":
                fail(
                    "unknown_relationship",
                    name,
                    f"customers have no relationship {name}.",
                    "relationships",
                )
            elif (
                not isinstance(linkage, dict)
                or linkage.get("type") != "users"
                or linkage.get("id") not in OWNERS
            ):
                fail(
                    "invalid",
                    name,
                    f"owner must be one of users {', '.join(OWNERS)}.",
                    "relationships",
                )
            else:
                changes["owner_id"] = linkage["id"]
        if errors:
            raise JsonApiError(422, errors)
        return changes

    async def touch(self, request: Request) -> Response:
        return touch_response(await request.body(), {"customers": self.store})


async def _jsonapi_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, JsonApiError):
        return exc.response()
    assert isinstance(exc, HTTPException)
    codes = {400: "invalid_parameter", 404: "not_found", 405: "method_not_allowed"}
    error = JsonApiError.single(exc.status_code, codes.get(exc.status_code, "error"), exc.detail)
    response = error.response()
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def create_commerce_app(
    *,
    records: int = 0,
    seed: int = 42,
    overlap: int = 0,
    client_id: str = "commerce-client",
    client_secret: str = "commerce-secret",
    token_lifetime: int = 3600,
    rate_limit: tuple[float, float, int] | None = None,
    faults: FaultConfig | None = None,
) -> Starlette:
    """Build the commerce sandbox app: a JSON:API customers backend behind OAuth2.

    Args:
        records: customers the store starts with.
        overlap: how many of them (the first ones) share the emails of shop customers
            `1..overlap` of the same seed.
        token_lifetime: seconds an access token stays valid.
        rate_limit: `(rate, per_seconds, burst)` of the token bucket all clients share.
        faults: how often to fail; see `FaultConfig`.

    ```python
    app = create_commerce_app(records=50, overlap=20)
    with SandboxServer(app) as server:
        token = httpx.post(
            f"{server.url}/oauth2-token",
            data={"grant_type": "client_credentials"},
            auth=("commerce-client", "commerce-secret"),
        ).json()["access_token"]
    ```
    """
    stats = SandboxStats()
    store = CommerceCustomerStore(records=records, seed=seed, overlap=overlap)
    issuer = ClientCredentialsIssuer(
        client_id=client_id,
        client_secret=client_secret,
        lifetime=token_lifetime,
        stats=stats,
        realm="commerce",
    )
    bucket = TokenBucket(*rate_limit) if rate_limit is not None else None
    plan = FaultPlan(faults) if faults is not None else None
    api = _CommerceApi(store, stats, bucket, plan)

    middleware = [
        Middleware(StatsMiddleware, stats=stats),
        Middleware(BearerTokenMiddleware, issuer=issuer, stats=stats, open_paths=[TOKEN_PATH]),
    ]
    if bucket is not None:
        middleware.append(Middleware(RateLimitMiddleware, bucket=bucket, stats=stats))
    if plan is not None:
        middleware.append(Middleware(FaultMiddleware, plan=plan, stats=stats))

    one = "/api/customers/{customer_id}"
    app = Starlette(
        routes=[
            Route(TOKEN_PATH, issuer.token_endpoint, methods=["POST"]),
            Route("/api/customers", api.list_customers, methods=["GET"]),
            Route("/api/customers", api.create_customer, methods=["POST"]),
            Route(one, api.get_customer, methods=["GET"]),
            Route(one, api.patch_customer, methods=["PATCH"]),
            Route(one, api.delete_customer, methods=["DELETE"]),
            *admin_routes(stats, api.reset, api.touch),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _jsonapi_error, JsonApiError: _jsonapi_error},
    )
    app.state.stats = stats
    app.state.customers = store
    app.state.issuer = issuer
    return app
