"""Pydantic models of `webhooks:`: which pushes interlink accepts, and how each is verified.

```yaml
webhooks:
  billing:                       # POST /api/v1/webhooks/billing (route: not built yet)
    scheme: stripe               # standard | stripe | github | shopify | slack | hmac
    secrets: ["${STRIPE_WHSEC_NEW}", "${STRIPE_WHSEC_OLD}"]   # any of them may match
    tolerance: 5m                # signed timestamps this far off now, either way
    connection: stripe           # its deliveries are held while it is switched off
  shop:
    scheme: hmac                 # the guide's controller: X-Signature + X-API-Key
    secret: ${SHOP_WEBHOOK_SECRET}
    header: X-Signature
    algorithm: sha256            # sha1 | sha256 | sha512
    encoding: hex                # hex | base64
    api_key: ${SHOP_WEBHOOK_API_KEY}
    event_type: {header: X-Event-Type}
    delivery_id: {path: event_id}
```

Each source is one model, chosen by `scheme`. The verifiers that read these models are in
`interlink.webhooks`; the secrets are `SecretStr` and never appear in an error or a repr.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._units import parse_duration, parse_size

__all__ = [
    "DEFAULT_WEBHOOK_TOLERANCE",
    "RESERVED_SOURCE_NAMES",
    "WebhookActionConfig",
    "WEBHOOK_SCHEMES",
    "GitHubWebhookConfig",
    "HmacWebhookConfig",
    "ShopifyWebhookConfig",
    "SlackWebhookConfig",
    "StandardWebhookConfig",
    "StripeWebhookConfig",
    "WebhookFieldConfig",
    "WebhookSourceConfig",
    "WebhookSources",
]

WEBHOOK_SCHEMES = ["standard", "stripe", "github", "shopify", "slack", "hmac"]
DEFAULT_WEBHOOK_TOLERANCE = 300.0
"""Seconds a signed timestamp may be off the receiver's clock, in both directions."""
DEFAULT_REPEAT_WINDOW = 3600.0
"""Seconds within which a body sent again without a delivery id is a retry of the first
(Slack retries after 1 and 5 minutes); after it, the same body is a new delivery."""

# RFC 9110 section 5.6.2 `token`: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_BODY_PATH = re.compile(r"^[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*$")
_SOURCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_WHSEC = "whsec_"


MAX_BODY_LIMIT = 1024 * 1024 * 1024
"""The largest `max_body` a webhook source may set (1 GiB)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"expected a header name such as X-Event-Type; got {value!r}")
    return value


def _secret_text(value: Any) -> Any:
    # The value is never echoed: a YAML number given as a secret is still a secret.
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError("expected text (quote the secret in YAML)")
    if not value.strip():
        raise ValueError("expected a non-empty secret")
    return value


HeaderName = Annotated[str, AfterValidator(_header_name)]
Secret = Annotated[SecretStr, BeforeValidator(_secret_text)]
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)]


class WebhookFieldConfig(_Model):
    """Where a value of a delivery comes from: a request `header`, or a dotted `path` into the
    JSON body (read only after the signature is verified). Give exactly one."""

    header: HeaderName | None = None
    path: str | None = None

    @field_validator("path")
    @classmethod
    def _dotted(cls, value: str | None) -> str | None:
        if value is not None and not _BODY_PATH.match(value):
            raise ValueError(f"expected a dotted path such as data.object.id; got {value!r}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> WebhookFieldConfig:
        if (self.header is None) == (self.path is None):
            raise ValueError("expected exactly one of 'header' or 'path'")
        return self


_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
_EVENT_PATTERN = re.compile(r"^(\*|[^*\s]{1,300}(\.\*|\*)?)$")


class WebhookActionConfig(_Model):
    """What a delivery of an event type does; give exactly one of `run`, `handler`,
    `ignore` (`record` goes with `run`).

    ```yaml
    actions:
      customer.updated: {run: customers, record: data.id}   # import that one record
      "customer.*": {run: customers}                        # run the whole pipeline
      order.created: {handler: myapp.hooks:on_order}        # your function
      "*": ignore
    ```
    """

    run: str | None = None
    """A pipeline: the whole of it (coalesced: a burst of events makes one run), or with
    `record`, the one record the event names."""
    record: str | None = None
    """A dotted path to the record's id in the JSON body (`data.id`)."""
    handler: str | None = None
    """`module:function`, sync or async, called with the `WebhookEvent`."""
    ignore: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "ignore":
            return {"ignore": True}
        if isinstance(value, str):
            raise ValueError(
                "expected 'ignore' or a mapping with run, record or handler "
                "(such as {run: customers})"
            )
        return value

    @field_validator("record")
    @classmethod
    def _record_path(cls, value: str | None) -> str | None:
        if value is not None and not _BODY_PATH.match(value):
            raise ValueError(f"expected a dotted path such as data.object.id; got {value!r}")
        return value

    @field_validator("handler")
    @classmethod
    def _handler_path(cls, value: str | None) -> str | None:
        if value is not None and not _HANDLER.match(value):
            raise ValueError(
                f"expected module:function such as myapp.hooks:on_order; got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> WebhookActionConfig:
        given = [name for name in ("run", "handler") if getattr(self, name) is not None]
        if self.ignore:
            given.append("ignore")
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of 'run', 'handler' or 'ignore'"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.record is not None and self.run is None:
            raise ValueError("'record' needs 'run': the pipeline that imports the record")
        return self


def _event_patterns(value: dict[str, Any]) -> dict[str, Any]:
    for pattern in value:
        if not isinstance(pattern, str) or not _EVENT_PATTERN.match(pattern):
            raise ValueError(
                "event types are names (customer.updated), prefixes ending in '*' "
                f"(customer.*) or '*'; got {pattern!r}"
            )
    return value


WebhookActions = Annotated[dict[str, WebhookActionConfig], AfterValidator(_event_patterns)]


class _WebhookSource(_Model):
    """What every scheme shares: secrets, tolerance, the on/off switch, the body limit, the
    connection the pushes are about."""

    secret: Secret | None = None
    secrets: list[Secret] | None = None
    """Every active secret; a delivery signed with any of them is accepted (rotation)."""
    tolerance: Seconds = DEFAULT_WEBHOOK_TOLERANCE
    """For schemes with a signed timestamp: how far off now it may be, in both directions."""
    enabled: bool = True
    """A disabled source answers 404, as an unknown one does."""
    event_type: WebhookFieldConfig | None = None
    """Overrides the scheme's own event type (Stripe `type`, `X-GitHub-Event`, ...)."""
    max_body: Annotated[int, BeforeValidator(parse_size), Field(gt=0, le=MAX_BODY_LIMIT)] = (
        1024 * 1024
    )
    """Larger bodies are refused with 413 before they are read whole (by the route); at
    most 1 GiB (a body is held in memory, and a writer process's frame carries up to 2 GiB)."""
    actions: WebhookActions = Field(default_factory=dict)
    """Event type (exact, `prefix.*` or `*`) -> what a delivery of that type does."""
    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None
    """Attempts at processing a delivery before it is dead-lettered (`failed`); None: the
    queue's `jobs.max_attempts`."""
    connection: str | None = None
    """The connection whose data these pushes are about: while it is switched off
    (`interlink connections disable`), deliveries are stored and held, unprocessed, until
    it is switched on (webhooks/_held.py)."""
    repeat_window: Seconds = DEFAULT_REPEAT_WINDOW
    """For a delivery without a delivery id (its id is the body's hash, `sha256:...`): a
    body that comes again within this long of the first is the same delivery (a retry,
    answered as a duplicate); later, it is a new delivery."""

    _keys: tuple[bytes, ...] = PrivateAttr(default=())

    @field_validator("secrets")
    @classmethod
    def _some(cls, value: list[SecretStr] | None) -> list[SecretStr] | None:
        if value is not None and not value:
            raise ValueError("expected at least one secret")
        return value

    @model_validator(mode="after")
    def _one_way_to_give_secrets(self) -> _WebhookSource:
        if self.secret is not None and self.secrets is not None:
            raise ValueError("give 'secret' or 'secrets', not both")
        if self.secret is None and self.secrets is None:
            raise ValueError("missing required key 'secret' (or 'secrets', a list, to rotate)")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._keys = tuple(self._key(s.get_secret_value()) for s in self.all_secrets)

    @property
    def all_secrets(self) -> list[SecretStr]:
        """`secrets`, or `[secret]`."""
        if self.secrets is not None:
            return list(self.secrets)
        return [self.secret] if self.secret is not None else []

    @property
    def signing_keys(self) -> tuple[bytes, ...]:
        """The HMAC keys, one per active secret, in the order they were written."""
        return self._keys

    @staticmethod
    def _key(secret: str) -> bytes:
        return secret.encode("utf-8")


def _whsec_key(secret: str) -> bytes:
    """A Standard Webhooks secret: `whsec_` (optional) and base64, as the reference
    library reads it; padding may be left out."""
    text = secret.strip()
    text = text.removeprefix(_WHSEC)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise ValueError("expected whsec_ followed by base64 text (the secret the sender shows)")
    return key


class StandardWebhookConfig(_WebhookSource):
    """Standard Webhooks (and Svix): `webhook-id`, `webhook-timestamp`, `webhook-signature:
    v1,<base64>` (or the same `svix-*` headers). The event type defaults to the body's `type`."""

    scheme: Literal["standard"]

    @field_validator("secret")
    @classmethod
    def _base64_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _whsec_key(value.get_secret_value())
        return value

    @field_validator("secrets")
    @classmethod
    def _base64_secrets(cls, value: list[SecretStr] | None) -> list[SecretStr] | None:
        for index, secret in enumerate(value or []):
            try:
                _whsec_key(secret.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"item {index + 1}: {exc}") from None
        return value

    @staticmethod
    def _key(secret: str) -> bytes:
        return _whsec_key(secret)


class StripeWebhookConfig(_WebhookSource):
    """Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, keyed with the whole `whsec_...`
    text. Delivery id and event type are the body's `id` and `type`."""

    scheme: Literal["stripe"]


class GitHubWebhookConfig(_WebhookSource):
    """GitHub: `X-Hub-Signature-256: sha256=<hex>`; id `X-GitHub-Delivery`, event
    `X-GitHub-Event`. No timestamp is signed, so `tolerance` does not apply."""

    scheme: Literal["github"]


class ShopifyWebhookConfig(_WebhookSource):
    """Shopify: `X-Shopify-Hmac-Sha256: <base64>`; id `X-Shopify-Webhook-Id`, event
    `X-Shopify-Topic`. No timestamp is signed, so `tolerance` does not apply."""

    scheme: Literal["shopify"]


class SlackWebhookConfig(_WebhookSource):
    """Slack: `X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`, with
    `X-Slack-Request-Timestamp`. Slack sends no delivery id: the body's SHA-256 stands in,
    unless `delivery_id` names one (`{path: event_id}` for the Events API)."""

    scheme: Literal["slack"]
    delivery_id: WebhookFieldConfig | None = None


class HmacWebhookConfig(_WebhookSource):
    """Any sender that signs with an HMAC: which header, which hash, how it is written, and
    what was signed (`signed_content`, a template of `{body}`, `{timestamp}` and `{id}`)."""

    scheme: Literal["hmac"]
    header: HeaderName = "X-Signature"
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    """Text before the digest in the header, such as `sha256=`."""
    timestamp_header: HeaderName | None = None
    """Unix seconds; with it, `{timestamp}` must be signed and `tolerance` applies."""
    delivery_id: WebhookFieldConfig | None = None
    """Default: the body's SHA-256."""
    signed_content: str | None = None
    """Default `{body}`, or `{timestamp}.{body}` when there is a `timestamp_header`."""
    api_key: Secret | None = None
    """Also require this value in `api_key_header` (compared in constant time)."""
    api_key_header: HeaderName = "X-API-Key"

    _template: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("prefix")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"expected printable ASCII text such as 'sha256='; got {value!r}")
        return value

    @field_validator("signed_content")
    @classmethod
    def _template_parts(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        names = _PLACEHOLDER.findall(value)
        unknown = [n for n in names if n not in ("body", "timestamp", "id")]
        if unknown:
            raise ValueError(
                f"expected only {{body}}, {{timestamp}} and {{id}} in the template; "
                f"got {{{unknown[0]}}}"
            )
        literal = _PLACEHOLDER.sub("", value)
        if names.count("body") != 1 or "{" in literal or "}" in literal:
            raise ValueError(f"expected {{body}} once and balanced {{...}}; got {value!r}")
        # Fields are validated in order: timestamp_header and delivery_id come before.
        timestamp_header = info.data.get("timestamp_header")
        delivery_id = info.data.get("delivery_id")
        if timestamp_header and "timestamp" not in names:
            raise ValueError(
                "expected {timestamp} in the template when timestamp_header is set "
                f"(an unsigned timestamp does not stop replays); got {value!r}"
            )
        if "timestamp" in names and not timestamp_header:
            raise ValueError("{timestamp} needs a timestamp_header")
        if "id" in names and (delivery_id is None or delivery_id.header is None):
            raise ValueError("{id} needs delivery_id: {header: ...}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        template = self.signed_content
        if template is None:
            template = "{timestamp}.{body}" if self.timestamp_header else "{body}"
        # Alternating literal text and placeholder names: "a{x}b" -> ("a", "x", "b").
        self._template = tuple(_PLACEHOLDER.split(template))

    @property
    def template(self) -> tuple[str, ...]:
        """`signed_content` split into literal text (even indexes) and placeholder names."""
        return self._template


def _require_scheme(value: Any) -> Any:
    if isinstance(value, dict) and "scheme" not in value:
        raise ValueError(f"missing required key 'scheme' (one of {', '.join(WEBHOOK_SCHEMES)})")
    return value


WebhookSourceConfig = Annotated[
    StandardWebhookConfig
    | StripeWebhookConfig
    | GitHubWebhookConfig
    | ShopifyWebhookConfig
    | SlackWebhookConfig
    | HmacWebhookConfig,
    Field(discriminator="scheme"),
    BeforeValidator(_require_scheme),
]
"""One entry under `webhooks:`, chosen by its `scheme`."""


RESERVED_SOURCE_NAMES = frozenset({"deliveries", "rejections"})
"""Paths under /api/v1/webhooks/ the API itself uses."""


def _source_names(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if name in RESERVED_SOURCE_NAMES:
            raise ValueError(
                f"{name!r} is not a webhook source name: /api/v1/webhooks/{name} is the "
                "API's own route"
            )
        if not _SOURCE_NAME.match(name):
            raise ValueError(
                f"webhook source names are letters, digits, '_' and '-', at most 100 (they "
                f"are part of the URL); got {name!r}"
            )
    return value


WebhookSources = Annotated[dict[str, WebhookSourceConfig], AfterValidator(_source_names)]
"""The `webhooks:` mapping: source name (the last part of the receiving URL) -> config."""
