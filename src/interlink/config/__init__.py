"""The models of `interlink.yaml` and the loader that fills them.

```python
from interlink.config import load_config

config = load_config("interlink.yaml")   # ConfigError, one line per problem, if it is wrong
```
"""

from __future__ import annotations

import typing as _typing

from interlink._lazy import lazy_exports as _lazy_exports
from interlink.config._cron import CRON_ALIASES, check_cron
from interlink.config._dotenv import DOTENV_NAME, dotenv_path, parse_dotenv, read_dotenv
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
from interlink.config._oauth_presets import OAUTH_PRESETS
from interlink.config._pipelines import (
    ACCOUNT_NAME,
    ACCOUNT_PLACEHOLDER,
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
    StopWhenConfig,
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

if _typing.TYPE_CHECKING:
    from interlink.config._metrics import (
        GRANULARITIES,
        MAX_PERIOD_DAYS,
        METRIC_NAME,
        METRIC_OPS,
        MetricConfig,
        MetricPeriod,
        check_metric_sources,
        parse_period_days,
    )
    from interlink.config._webhooks import (
        DEFAULT_REPEAT_WINDOW,
        DEFAULT_WEBHOOK_TOLERANCE,
        RESERVED_SOURCE_NAMES,
        WEBHOOK_SCHEMES,
        GitHubWebhookConfig,
        HmacWebhookConfig,
        ShopifyWebhookConfig,
        SlackWebhookConfig,
        StandardWebhookConfig,
        StripeWebhookConfig,
        WebhookActionConfig,
        WebhookFieldConfig,
        WebhookSourceConfig,
        WebhookSources,
    )

# The webhook and metric models are built when first asked for (config/_sections.py).
_LAZY = {
    "GRANULARITIES": "._metrics",
    "MAX_PERIOD_DAYS": "._metrics",
    "METRIC_NAME": "._metrics",
    "METRIC_OPS": "._metrics",
    "MetricConfig": "._metrics",
    "MetricPeriod": "._metrics",
    "check_metric_sources": "._metrics",
    "parse_period_days": "._metrics",
    "MetricSources": "._metrics",
    "DEFAULT_REPEAT_WINDOW": "._webhooks",
    "DEFAULT_WEBHOOK_TOLERANCE": "._webhooks",
    "RESERVED_SOURCE_NAMES": "._webhooks",
    "WEBHOOK_SCHEMES": "._webhooks",
    "GitHubWebhookConfig": "._webhooks",
    "HmacWebhookConfig": "._webhooks",
    "ShopifyWebhookConfig": "._webhooks",
    "SlackWebhookConfig": "._webhooks",
    "StandardWebhookConfig": "._webhooks",
    "StripeWebhookConfig": "._webhooks",
    "WebhookActionConfig": "._webhooks",
    "WebhookFieldConfig": "._webhooks",
    "WebhookSourceConfig": "._webhooks",
    "WebhookSources": "._webhooks",
}

__getattr__ = _lazy_exports(__name__, _LAZY)

__all__ = [
    "CRON_ALIASES",
    "DOTENV_NAME",
    "check_cron",
    "dotenv_path",
    "parse_dotenv",
    "read_dotenv",
    "GRANULARITIES",
    "MAX_PERIOD_DAYS",
    "METRIC_NAME",
    "METRIC_OPS",
    "MetricConfig",
    "MetricPeriod",
    "MetricSources",
    "check_metric_sources",
    "parse_period_days",
    "ACCOUNT_NAME",
    "ACCOUNT_PLACEHOLDER",
    "OAUTH_PRESETS",
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
    "StopWhenConfig",
    "TimeoutConfig",
    "TimestampsConfig",
    "expand_env",
    "is_reserved_table",
    "load_config",
    "load_config_source",
    "parse_config",
    "parse_duration",
    "substitute_env",
    "DEFAULT_REPEAT_WINDOW",
    "DEFAULT_WEBHOOK_TOLERANCE",
    "RESERVED_SOURCE_NAMES",
    "WEBHOOK_SCHEMES",
    "GitHubWebhookConfig",
    "HmacWebhookConfig",
    "ShopifyWebhookConfig",
    "SlackWebhookConfig",
    "StandardWebhookConfig",
    "StripeWebhookConfig",
    "WebhookActionConfig",
    "WebhookFieldConfig",
    "WebhookSourceConfig",
    "WebhookSources",
]
