"""The HTTP layer: `ApiClient` and the auth, retry, rate-limit and transport pieces under it,
and the cassettes that record a connection's exchanges and replay them offline."""

from ._auth import ApiKeyAuth, BasicAuth, BearerAuth
from ._auto_transport import AutoTransport
from ._cassette import CASSETTE_VERSION, Cassette, CassetteMissError, cassette_path
from ._client import DEFAULT_TIMEOUT, ApiClient, ClientStats
from ._factory import build_auth, client_from_config, endpoint_url
from ._headers import RateLimitInfo, parse_rate_limit, parse_retry_after
from ._oauth2 import ClientCredentialsAuth, MemoryTokenSource, OAuth2TokenAuth, TokenEndpoint
from ._ratelimit import RateLimiter, RateLimitTransport, ServerLimits, TokenBucket
from ._recording import (
    RECORD_ENV,
    REPLAY_ENV,
    CassetteMode,
    RecordingTransport,
    ReplayTransport,
    active_cassette,
    forget_environment_cassettes,
    recording,
    replaying,
)
from ._redact import MASK, SECRET_PARAM, Redactor
from ._retry import (
    IDEMPOTENT_METHODS,
    RetryBudget,
    RetryPolicy,
    RetryTransport,
    full_jitter,
    log_headers,
)
from ._status import error_for_exception, error_for_response, error_message
from ._thread_transport import ThreadTransport
from ._transports import AiohttpTransport, create_transport
from ._urls import OriginPolicy, origin_of, url_before_auth

__all__ = [
    "endpoint_url",
    "CASSETTE_VERSION",
    "Cassette",
    "CassetteMissError",
    "CassetteMode",
    "RECORD_ENV",
    "REPLAY_ENV",
    "RecordingTransport",
    "forget_environment_cassettes",
    "ReplayTransport",
    "active_cassette",
    "cassette_path",
    "recording",
    "replaying",
    "DEFAULT_TIMEOUT",
    "IDEMPOTENT_METHODS",
    "AiohttpTransport",
    "AutoTransport",
    "ThreadTransport",
    "ApiClient",
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "ClientCredentialsAuth",
    "ClientStats",
    "MemoryTokenSource",
    "OAuth2TokenAuth",
    "OriginPolicy",
    "RateLimitInfo",
    "RateLimitTransport",
    "RateLimiter",
    "MASK",
    "Redactor",
    "SECRET_PARAM",
    "RetryBudget",
    "RetryPolicy",
    "RetryTransport",
    "ServerLimits",
    "TokenBucket",
    "TokenEndpoint",
    "build_auth",
    "client_from_config",
    "create_transport",
    "error_for_exception",
    "error_for_response",
    "error_message",
    "full_jitter",
    "log_headers",
    "origin_of",
    "parse_rate_limit",
    "parse_retry_after",
    "url_before_auth",
]
