"""The models of `interlink.yaml` and the loader that fills them.

```python
from interlink.config import load_config

config = load_config("interlink.yaml")   # ConfigError, one line per problem, if it is wrong
```
"""

from __future__ import annotations

from interlink.config._env import expand_env, substitute_env
from interlink.config._load import load_config, load_config_source, parse_config
from interlink.config._model import (
    AUTH_TYPES,
    DEFAULT_DATABASE_URL,
    ApiKeyAuthConfig,
    AuthConfig,
    BasicAuthConfig,
    BearerAuthConfig,
    ConnectionConfig,
    DatabaseConfig,
    InterlinkConfig,
    NoAuthConfig,
    OAuth2AuthConfig,
    OAuth2ClientCredentialsConfig,
    RateLimitConfig,
    RetryConfig,
    TimeoutConfig,
    parse_duration,
)
from interlink.config._pipelines import (
    CONFLICT_POLICIES,
    WRITE_MODES,
    DestinationConfig,
    PipelineConfig,
    TimestampsConfig,
    is_reserved_table,
)
from interlink.config._resources import (
    PAGINATOR_TYPES,
    RESOURCE_TYPES,
    CursorPaginateConfig,
    CustomPaginateConfig,
    ErrorEnvelopeConfig,
    GraphQLResourceConfig,
    IncrementalConfig,
    LinkHeaderPaginateConfig,
    NextUrlPaginateConfig,
    OffsetPaginateConfig,
    PagePaginateConfig,
    PaginateConfig,
    RelayPaginateConfig,
    ResourceConfig,
    RestResourceConfig,
    SinglePaginateConfig,
    SoapResourceConfig,
)
from interlink.config._service import (
    DEFAULT_RATE_LIMITS,
    JobsConfig,
    RouteLimit,
    ServerConfig,
    parse_rate,
)
from interlink.config._source import ConfigSource
from interlink.config._starter import STARTER_CONFIG
from interlink.config._units import parse_size
from interlink.config._webhooks import (
    DEFAULT_WEBHOOK_TOLERANCE,
    WEBHOOK_SCHEMES,
    GitHubWebhookConfig,
    HmacWebhookConfig,
    ShopifyWebhookConfig,
    SlackWebhookConfig,
    StandardWebhookConfig,
    StripeWebhookConfig,
    WebhookFieldConfig,
    WebhookSourceConfig,
    WebhookSources,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "JobsConfig",
    "RouteLimit",
    "ServerConfig",
    "parse_rate",
    "parse_size",
    "AUTH_TYPES",
    "CONFLICT_POLICIES",
    "DEFAULT_DATABASE_URL",
    "PAGINATOR_TYPES",
    "RESOURCE_TYPES",
    "STARTER_CONFIG",
    "WRITE_MODES",
    "ApiKeyAuthConfig",
    "AuthConfig",
    "BasicAuthConfig",
    "BearerAuthConfig",
    "ConfigSource",
    "ConnectionConfig",
    "CursorPaginateConfig",
    "CustomPaginateConfig",
    "DatabaseConfig",
    "DestinationConfig",
    "ErrorEnvelopeConfig",
    "GraphQLResourceConfig",
    "IncrementalConfig",
    "InterlinkConfig",
    "LinkHeaderPaginateConfig",
    "NextUrlPaginateConfig",
    "NoAuthConfig",
    "OAuth2AuthConfig",
    "OAuth2ClientCredentialsConfig",
    "OffsetPaginateConfig",
    "PagePaginateConfig",
    "PaginateConfig",
    "PipelineConfig",
    "RateLimitConfig",
    "RelayPaginateConfig",
    "ResourceConfig",
    "RestResourceConfig",
    "RetryConfig",
    "SinglePaginateConfig",
    "SoapResourceConfig",
    "TimeoutConfig",
    "TimestampsConfig",
    "expand_env",
    "is_reserved_table",
    "load_config",
    "load_config_source",
    "parse_config",
    "parse_duration",
    "substitute_env",
    "DEFAULT_WEBHOOK_TOLERANCE",
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
