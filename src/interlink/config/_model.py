"""Pydantic models of `interlink.yaml`.

Every model forbids unknown keys, so a typo is an error that names the key instead of a
setting that silently does nothing. Secrets are `SecretStr`: they print as `**********`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from ._messages import did_you_mean
from ._pipelines import PipelineConfig
from ._resources import ResourceConfig, default_resource_type
from ._sections import METRICS, WEBHOOKS
from ._service import JobsConfig, ServerConfig
from ._units import parse_duration

if TYPE_CHECKING:
    from ._metrics import MetricSources
    from ._webhooks import WebhookSources

__all__ = [
    "AUTH_TYPES",
    "ApiKeyAuthConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "BearerAuthConfig",
    "DEFAULT_DATABASE_URL",
    "ConnectionConfig",
    "DatabaseConfig",
    "InterlinkConfig",
    "NoAuthConfig",
    "OAuth2AuthConfig",
    "OAuth2ClientCredentialsConfig",
    "RateLimitConfig",
    "RetryConfig",
    "TimeoutConfig",
    "parse_duration",
]

DEFAULT_DATABASE_URL = "sqlite:///.interlink/interlink.db"


Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimeoutConfig(_Model):
    """Timeouts in seconds for each phase of a request; `timeout: 10` sets all four."""

    connect: Seconds = 5.0
    read: Seconds = 30.0
    write: Seconds = 30.0
    pool: Seconds = 10.0

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            seconds = parse_duration(value)
            return {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
        if isinstance(value, dict):
            return {k: parse_duration(v) for k, v in value.items()}
        return value


class RetryConfig(_Model):
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    max_attempts: Annotated[int, Field(ge=1, le=20)] = 4
    base: Seconds = 0.5
    cap: Seconds = 20.0
    max_retry_after: Seconds = 60.0
    idempotency_header: str | None = None

    @field_validator("base", "cap", "max_retry_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class RateLimitConfig(_Model):
    """A client-side token bucket (`rate` requests every `per` seconds, bursts up to
    `burst`) and a warning when the quota the API reports runs low (`warn_below`)."""

    rate: Annotated[float, Field(gt=0)] | None = None
    per: Seconds = 1.0
    burst: Annotated[int, Field(ge=1)] | None = None
    warn_below: Annotated[int, Field(ge=1)] | None = None
    """Log a WARNING, once per rate-limit window, when the requests left that the API
    reports (`X-RateLimit-Remaining`, `RateLimit`) fall below this."""

    @field_validator("per", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    @model_validator(mode="after")
    def _something_to_do(self) -> RateLimitConfig:
        if self.rate is None:
            if self.warn_below is None:
                raise ValueError(
                    "expected rate (a client-side limit), warn_below (a warning when the "
                    "API's quota runs low) or both"
                )
            given = [key for key in ("per", "burst") if key in self.model_fields_set]
            if given:
                raise ValueError(f"{given[0]} needs rate: it shapes the client-side limit")
        return self


class NoAuthConfig(_Model):
    type: Literal["none"]


class ApiKeyAuthConfig(_Model):
    """An API key sent in a header (default `X-API-Key`) or a query parameter."""

    type: Literal["api_key"]
    key: SecretStr
    name: str = "X-API-Key"
    location: Literal["header", "query"] = Field("header", alias="in")


class BearerAuthConfig(_Model):
    type: Literal["bearer"]
    token: SecretStr


class BasicAuthConfig(_Model):
    type: Literal["basic"]
    username: str
    password: SecretStr


TokenEndpointAuth = Literal["client_secret_basic", "client_secret_post"]


def _in_clear(value: str | None) -> str | None:
    """A token or revocation endpoint written as an absolute `http://` URL to a host other
    than this machine is refused: the client secret and the tokens would cross the network
    in clear (RFC 6749 section 3.2 requires TLS). A relative one goes to the connection's
    base URL."""
    if value is None:
        return value
    found = re.match(r"^http://(\[[0-9A-Fa-f:.]+\]|[^/\s:@?#]+)", value, re.IGNORECASE)
    if found is not None and found[1].lower() not in ("127.0.0.1", "[::1]", "localhost"):
        raise ValueError(
            "an OAuth2 endpoint must be https:// (http:// only on 127.0.0.1, [::1] or "
            f"localhost): the client secret and tokens would travel in clear; got {value!r}"
        )
    return value


class OAuth2ClientCredentialsConfig(_Model):
    """Server-to-server OAuth2: a token fetched from `token_url` and cached until expiry."""

    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: SecretStr
    auth_method: TokenEndpointAuth = "client_secret_basic"
    scope: str | None = None
    audience: str | None = None
    extra_params: dict[str, str] = Field(default_factory=dict)

    _token_url = field_validator("token_url")(_in_clear)


class OAuth2AuthConfig(_Model):
    """Authorization-code OAuth2 ("connect your account"): tokens live in the vault, one set
    per connected account, got through `authorize_url` and refreshed at `token_url`.

    `preset` fills in a provider's URLs, token endpoint auth and account key (keys written
    here win). `access_token` and `refresh_token` seed the vault's default account when no
    token is stored yet.
    """

    type: Literal["oauth2"]
    preset: Literal["stripe", "google", "github", "facebook"] | None = None
    token_url: str
    client_id: str
    client_secret: SecretStr | None = None
    auth_method: TokenEndpointAuth = "client_secret_basic"
    authorize_url: str | None = None
    """Where a browser is sent to grant access (`interlink connect`, /connect/...)."""
    redirect_uri: str | None = None
    """Where the provider sends the browser back: interlink's
    `/connect/{connection}/callback`, registered with the provider as is."""
    revocation_url: str | None = None
    """The RFC 7009 endpoint `connections disconnect` revokes a token at, if the provider
    has one."""
    scope: str | None = None
    authorize_params: dict[str, str] = Field(default_factory=dict)
    """Extra query parameters of the authorize URL (Google: `access_type: offline`)."""
    pkce: bool = True
    """Send a PKCE S256 challenge (RFC 7636); only for a provider that refuses one."""
    account_key: str | None = None
    """The token response's field naming the connected account (`stripe_user_id`); without
    it an account is named by whoever connects it (`--account`), or is the default one."""
    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("preset"), str):
            from ._oauth_presets import OAUTH_PRESETS

            preset = OAUTH_PRESETS.get(value["preset"])
            if preset is None:
                got = value["preset"]
                known = ", ".join(repr(name) for name in OAUTH_PRESETS)
                hint = did_you_mean(got, list(OAUTH_PRESETS))
                raise ValueError(f"preset: expected one of {known}; got {got!r}{hint}")
            return {**preset, **value}
        return value

    @model_validator(mode="after")
    def _scope_for_google(self) -> OAuth2AuthConfig:
        if self.preset == "google" and not self.scope:
            raise ValueError(
                "scope: Google refuses an authorization request without one; give the "
                "scopes your pipelines read with (such as "
                "https://www.googleapis.com/auth/analytics.readonly), space-separated"
            )
        return self

    _endpoints = field_validator("token_url", "revocation_url")(_in_clear)

    @field_validator("authorize_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
        return value

    @field_validator("redirect_uri")
    @classmethod
    def _redirect(cls, value: str | None) -> str | None:
        if value is None:
            return value
        found = re.match(
            r"^(https?)://(\[[0-9A-Fa-f:.]+\]|[^/\s:@?#]+)(:\d{1,5})?(/[^\s#]*)?\Z", value
        )
        if found is None:
            raise ValueError(
                "expected an absolute http(s) URL without a fragment, such as "
                f"https://integrations.example.com/connect/crm/callback; got {value!r}"
            )
        loopback = found[2].lower() in ("127.0.0.1", "[::1]", "localhost")
        if found[1] == "http" and not loopback:
            raise ValueError(
                "a redirect URI must be https:// (http:// only on 127.0.0.1, [::1] or "
                f"localhost, RFC 9700 section 2.6); got {value!r}"
            )
        return value


AuthConfig = Annotated[
    NoAuthConfig
    | ApiKeyAuthConfig
    | BearerAuthConfig
    | BasicAuthConfig
    | OAuth2ClientCredentialsConfig
    | OAuth2AuthConfig,
    Field(discriminator="type"),
]

AUTH_TYPES = ["none", "api_key", "bearer", "basic", "oauth2_client_credentials", "oauth2"]


class ConnectionConfig(_Model):
    """One external system: where it lives, how to authenticate and how hard to push it."""

    base_url: str
    auth: AuthConfig = NoAuthConfig(type="none")
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    timeout: TimeoutConfig = TimeoutConfig()
    retry: RetryConfig = RetryConfig()
    rate_limit: RateLimitConfig | None = None
    max_connections: Annotated[int, Field(ge=1, le=1000)] = 32
    transport: Literal["auto", "aiohttp", "threads", "httpx"] = "auto"
    allowed_origins: list[str] = Field(default_factory=list)
    """Origins besides base_url's that may receive the connection's credentials, such as
    `https://files.example.com` for next links on another host; written `scheme://host[:port]`."""
    _secret_values: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def secret_values(self) -> frozenset[str]:
        """The secret values `load_config` put into interlink.yaml: every `${file:PATH}`,
        and every `${VAR}` whose name or key looks secret. A client registers them with its
        `Redactor`, so that one written into `base_url` or a resource's `path` is masked in
        log lines and errors as it is in config errors."""
        return self._secret_values

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL; got {value!r}")
        if "?" in value or "#" in value:
            # Paths are appended to it: `...?appid=X` + `/items` is no URL the API knows.
            raise ValueError(
                "a base URL takes no query or fragment (paths are appended to it); "
                "put query values under the connection's params:"
            )
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [_origin(item) for item in value]

    @model_validator(mode="after")
    def _credentials_once(self) -> ConnectionConfig:
        if self.auth.type != "none" and re.match(r"^https?://[^/\s?#]*@", self.base_url):
            raise ValueError(
                "base_url carries user:password and auth: is set too: give the credentials "
                "once (user:password in base_url is basic auth)"
            )
        return self


_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/\s:@?#\[\]]+)(?::(?P<port>\d{1,5}))?/?$",
    re.IGNORECASE,
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> str:
    """`scheme://host[:port]`, lower-cased and without a default port, or ValueError."""
    found = _ORIGIN.match(text.strip())
    port = int(found["port"]) if found and found["port"] else None
    if found is None or port == 0 or (port or 0) > 65535:
        raise ValueError(
            "expected an origin such as https://api.example.com or "
            f"http://127.0.0.1:8080 (scheme, host and port; no path or query); got {text!r}"
        )
    scheme, host = found["scheme"].lower(), found["host"].lower()
    suffix = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{suffix}"


class DatabaseConfig(_Model):
    """Where interlink keeps its state: an SQLite file (default) or PostgreSQL."""

    url: str = DEFAULT_DATABASE_URL

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        backend = scheme.split("+", 1)[0]
        if backend not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"expected a sqlite:/// or postgresql:// URL; got {scheme or value!r}")
        return value

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"


Resource = Annotated[ResourceConfig, BeforeValidator(default_resource_type)]


class InterlinkConfig(_Model):
    """The whole of `interlink.yaml`."""

    database: DatabaseConfig = DatabaseConfig()
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    resources: dict[str, dict[str, Resource]] = Field(default_factory=dict)
    """Resources by connection name, then resource name: `shop.customers`."""
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    jobs: JobsConfig = JobsConfig()
    server: ServerConfig = ServerConfig()
    if TYPE_CHECKING:
        webhooks: WebhookSources = Field(default_factory=dict)
        metrics: MetricSources = Field(default_factory=dict)
    else:
        # Mappings here, checked with their real types only when the file has them
        # (config/_sections.py): their models are built then, not at every start-up.
        webhooks: Annotated[dict[str, Any], AfterValidator(WEBHOOKS)] = Field(default_factory=dict)
        metrics: Annotated[dict[str, Any], AfterValidator(METRICS)] = Field(default_factory=dict)
    # webhooks: pushes interlink accepts, by source name: `POST /api/v1/webhooks/{source}`.
    # metrics: aggregates over a synced table or a live resource, by name.

    def resource(self, name: str) -> tuple[str, str, ResourceConfig]:
        """`(connection, resource, config)` for `connection.resource` (KeyError if unknown)."""
        connection, _, resource = name.partition(".")
        try:
            return connection, resource, self.resources[connection][resource]
        except KeyError:
            known = ", ".join(self.resource_names()) or "none defined"
            raise KeyError(f"unknown resource {name!r}; known: {known}") from None

    def resource_names(self) -> list[str]:
        return [f"{c}.{r}" for c, group in self.resources.items() for r in group]

    @model_validator(mode="after")
    def _resources_refer_to_what_exists(self) -> InterlinkConfig:
        for connection, group in self.resources.items():
            if connection not in self.connections:
                known = ", ".join(self.connections) or "none defined"
                raise ValueError(
                    f"resources.{connection}: no connection named {connection!r} "
                    f"(connections: {known})"
                )
            for name, resource in group.items():
                parent = getattr(resource, "parent", None)
                if parent is None:
                    continue
                owner, _, parent_name = parent.rpartition(".")
                owner = owner or connection
                if parent_name not in self.resources.get(owner, {}):
                    raise ValueError(
                        f"resources.{connection}.{name}.parent: no resource named "
                        f"{owner}.{parent_name}"
                    )
                if owner == connection and parent_name == name:
                    raise ValueError(f"resources.{connection}.{name}.parent: names itself")
        resource_names = set(self.resource_names())
        for name, pipeline in self.pipelines.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", name):
                raise ValueError(
                    f"pipelines.{name}: pipeline names are letters, digits, '_' and '-'"
                )
            if pipeline.source not in resource_names:
                raise ValueError(
                    f"pipelines.{name}.source: no resource named {pipeline.source!r} "
                    f"(resources: {', '.join(sorted(resource_names)) or 'none defined'})"
                )
            if pipeline.account is not None:
                owner = pipeline.source.partition(".")[0]
                if not isinstance(self.connections[owner].auth, OAuth2AuthConfig):
                    raise ValueError(
                        f"pipelines.{name}.account: the source's connection {owner!r} has "
                        f"no accounts (auth.type {self.connections[owner].auth.type}); "
                        "accounts belong to auth.type oauth2 connections"
                    )
            target = pipeline.destination.resource
            if target is not None and target not in resource_names:
                raise ValueError(
                    f"pipelines.{name}.destination: no resource named {target!r} "
                    f"(resources: {', '.join(sorted(resource_names)) or 'none defined'})"
                )
        for source, hook in self.webhooks.items():
            if hook.connection is not None and hook.connection not in self.connections:
                known = ", ".join(self.connections) or "none defined"
                raise ValueError(
                    f"webhooks.{source}.connection: no connection named "
                    f"{hook.connection!r} (connections: {known})"
                )
            for event, action in hook.actions.items():
                if action.run is not None and action.run not in self.pipelines:
                    known = ", ".join(sorted(self.pipelines)) or "none defined"
                    raise ValueError(
                        f"webhooks.{source}.actions.{event}.run: no pipeline named "
                        f"{action.run!r} (pipelines: {known})"
                    )
        if self.metrics:
            from ._metrics import check_metric_sources

            check_metric_sources(
                self.metrics,
                resource_names=resource_names,
                auth_types={name: c.auth.type for name, c in self.connections.items()},
            )
        return self

    @field_validator("connections")
    @classmethod
    def _names(cls, value: dict[str, ConnectionConfig]) -> dict[str, ConnectionConfig]:
        for name in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", name):
                raise ValueError(f"connection names are letters, digits, '_' and '-'; got {name!r}")
        return value
