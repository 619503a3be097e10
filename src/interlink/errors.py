"""Every error interlink raises, in one tree.

```
InterlinkError                        code -> API envelope "error.code"; exit_code -> CLI
├── ConfigError (also ValueError)     file, key, expected, got, line          -> exit 2
│   └── UnknownTypeError              lists the known values
├── ApiError                          method, url (redacted), status_code, request_id,
│   │                                 body_excerpt, attempts, retryable, hint (the key
│   │                                 of interlink.yaml to check)
│   ├── TransportError                no response: connect/read timeout, reset (retryable)
│   ├── AuthError (401)
│   ├── ForbiddenError (403)
│   ├── NotFoundError (404)
│   ├── RateLimitedError (429)        retry_after (retryable)
│   ├── RequestRejectedError          any other 4xx
│   └── ServerError (5xx)             retry_after (retryable)
├── PaginationError                   the page or cursor that broke the loop
│   └── IncompleteReadError           the read ended short of the total the API announced
├── IncrementalError                  the incremental field is missing or its values
│                                     cannot be compared
├── LeaseLostError                    a pipeline lock or job lease was taken over: stop now
├── SchemaOutdatedError               the database's schema is older than the code -> exit 2
├── OAuthError                        error, error_description from the token endpoint
├── WebhookError                      a webhook delivery could not be accepted
│   └── SignatureError                reason, status: 401 bad or missing signature (or
│                                     stale timestamp), 400 malformed header
├── SyncError                         pipeline
│   ├── PipelineLockedError           another run of the pipeline holds its lock
│   ├── StateMismatchError            the source changed since its cursor was stored -> exit 2
│   └── RecordError                   record key, step: recorded, and the batch goes on
└── JobError                          job_id
    ├── JobNotFoundError              no job with that id
    │   └── JobNotFoundApiError       ... said by the jobs API (also a NotFoundError)
    ├── JobCancelledError             the job was cancelled (raised inside it to stop it)
    ├── JobTimeoutError               wait_for_job gave up; the job goes on
    └── QueueSchemaError              the queue's tables need migrating first   -> exit 2
```

`ApiError` also carries `error_code` and `details` when the server answered in
interlink's error envelope (the jobs API client raises these).

Subclasses say what the caller does next: retry, re-authenticate, fix the config,
skip the record. Which module raised an error is never a reason for a subclass.
Misuse of the library by a programmer raises built-in errors (`TypeError`,
`RuntimeError`) outside this tree.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AccountsFailedError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ForbiddenError",
    "IncompleteReadError",
    "IncrementalError",
    "InterlinkError",
    "JobCancelledError",
    "JobError",
    "JobNotFoundApiError",
    "JobNotFoundError",
    "JobTimeoutError",
    "LeaseLostError",
    "QueueSchemaError",
    "NotFoundError",
    "ConnectionDisabledError",
    "OAuthError",
    "PaginationError",
    "RateLimitedError",
    "RevocationError",
    "RequestRejectedError",
    "PipelineLockedError",
    "RecordError",
    "SchemaOutdatedError",
    "ServerError",
    "SignatureError",
    "StateMismatchError",
    "SyncError",
    "TransportError",
    "UnknownTypeError",
    "WebhookError",
]


class InterlinkError(Exception):
    """The root of every error interlink raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    exit_code: ClassVar[int] = 1


class ConfigError(InterlinkError, ValueError):
    """A configuration value is wrong; `str()` is the one line the CLI prints.

    The line names the file, the key path and what was expected, for example
    `interlink.yaml:7: connections.shop.auth.type: expected one of none, api_key; got 'oath2'`.
    """

    code = "INVALID_CONFIG"
    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        self.errors: list[ConfigError] = [self]
        """Every problem found, in file order, when one check found several; this one first."""
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        if self.key:
            where += f"{self.key}: "
        return where + self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, file={self.file!r}, "
            f"key={self.key!r}, line={self.line!r})"
        )


class UnknownTypeError(ConfigError):
    """A `type:` names nothing interlink knows; the message lists what it knows."""

    def __init__(
        self,
        kind: str,
        got: str,
        known: list[str],
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.kind = kind
        self.got = got
        self.known = known
        super().__init__(
            f"expected one of {', '.join(known)}; got {got!r}", file=file, key=key, line=line
        )


class ApiError(InterlinkError):
    """A remote API answered with an error, or could not be reached.

    `str()` is one line with the request id in front when the server sent one:
    `[req_42] GET https://api.example.com/orders -> 404 Not Found (1 attempt): no such order`.
    The URL has its secrets redacted before it gets here. A `hint` names what to check in
    interlink.yaml, and ends the line: `...: connection refused; check
    connections.shop.base_url`.
    """

    code = "UPSTREAM_ERROR"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        body_excerpt: str | None = None,
        attempts: int = 1,
        retryable: bool | None = None,
        error_code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.message = message
        self.error_code = error_code
        """The server's `error.code` when it answered in interlink's error envelope."""
        self.details = details or []
        self.method = method
        self.url = url
        self.status_code = status_code
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.attempts = attempts
        self.retryable = self.default_retryable if retryable is None else retryable
        self.hint: str | None = None
        """What to fix, set where the error meets the config (a resource's read):
        `connections.shop.base_url`, `resources.shop.orders.path ('/order')`."""
        super().__init__(message)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.request_id:
            parts.append(f"[{self.request_id}]")
        if self.method and self.url:
            parts.append(f"{self.method} {self.url}")
        if self.status_code is not None:
            parts.append(f"-> {self.status_code}")
        noun = "attempt" if self.attempts == 1 else "attempts"
        parts.append(f"({self.attempts} {noun}):")
        parts.append(self.message)
        line = " ".join(parts)
        return f"{line}; check {self.hint}" if self.hint else line

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, method={self.method!r}, "
            f"url={self.url!r}, status_code={self.status_code!r}, "
            f"request_id={self.request_id!r}, attempts={self.attempts!r}, "
            f"retryable={self.retryable!r}, error_code={self.error_code!r})"
        )


class TransportError(ApiError):
    """No response came back: the connection failed, was reset or timed out."""

    default_retryable = True


class AuthError(ApiError):
    """401: the credentials were refused (after one token refresh, where there is one)."""

    code = "UPSTREAM_UNAUTHORIZED"


class ForbiddenError(ApiError):
    """403: the credentials are valid but not allowed to do this."""

    code = "UPSTREAM_FORBIDDEN"


class NotFoundError(ApiError):
    """404: the resource does not exist."""

    code = "UPSTREAM_NOT_FOUND"


class RateLimitedError(ApiError):
    """429: the server refused the request for its rate limit; `retry_after` is in seconds."""

    code = "UPSTREAM_RATE_LIMITED"
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class RequestRejectedError(ApiError):
    """Any other 4xx: the request itself is wrong, so sending it again will not help."""

    code = "UPSTREAM_REJECTED"


class ServerError(ApiError):
    """5xx: the server failed; worth trying again later (`retry_after` seconds from now,
    when it said so: a 503 with `Retry-After`)."""

    code = "UPSTREAM_SERVER_ERROR"
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class PaginationError(InterlinkError):
    """A paginator could not find its way to the next page."""

    code = "PAGINATION_ERROR"


class IncompleteReadError(PaginationError):
    """The read ended with fewer records than the response said there were.

    `expected` is what the API announced (a total field, `X-Total-Count`, the last page's
    number...), `got` what arrived. The read's cursor is never moved past it.
    """

    code = "INCOMPLETE_READ"

    def __init__(self, message: str, *, expected: int | None = None, got: int | None = None):
        self.expected = expected
        self.got = got
        super().__init__(message)


class IncrementalError(InterlinkError):
    """The incremental field is missing from records, or its values cannot be compared
    (mixed kinds, unparseable timestamps); no record is ever dropped on a guess."""

    code = "INCREMENTAL_ERROR"


class LeaseLostError(InterlinkError):
    """A pipeline lock or a job lease is no longer held by this process (it expired and was
    taken over): everything it would still write is refused, and the work stops here."""

    code = "LEASE_LOST"


class SchemaOutdatedError(InterlinkError):
    """interlink's tables in the database are older (or newer) than this release: run
    `interlink db upgrade` (the message names the versions)."""

    code = "SCHEMA_OUTDATED"
    exit_code = 2


class ConnectionDisabledError(InterlinkError):
    """A connection, or the account of it a run acts for, is switched off
    (`interlink connections disable`): nothing runs through it until it is enabled."""

    code = "CONNECTION_DISABLED"

    def __init__(self, connection: str, account: str = "", *, reason: str | None = None) -> None:
        self.connection = connection
        self.account = account
        self.reason = reason
        owner = f"connection {connection!r}"
        if account:
            owner += f", account {account!r}"
        because = f" ({reason})" if reason else ""
        enable = f"interlink connections enable {connection}"
        if account:
            enable += f" --account {account}"
        super().__init__(f"{owner} is disabled{because}; `{enable}` switches it on again")


class RevocationError(InterlinkError):
    """The provider did not confirm the revocation (no answer, 5xx, an OAuth error): the
    token is kept so that it can be tried again (`--forget-anyway` forgets it regardless).
    """

    code = "REVOCATION_FAILED"
    exit_code = 1

    def __init__(
        self,
        connection: str,
        account: str,
        problem: str,
        *,
        status_code: int | None = None,
    ) -> None:
        self.connection = connection
        self.account = account
        self.problem = problem
        self.status_code = status_code
        whose = f"connection {connection!r}" + (f", account {account!r}" if account else "")
        flag = f"--account {account} " if account else ""
        super().__init__(
            f"{whose}: the provider did not revoke the grant ({problem}); the token is kept: "
            f"try again, or `interlink connections disconnect {connection} {flag}"
            "--forget-anyway` forgets it (the grant then stays valid at the provider)"
        )


class OAuthError(InterlinkError):
    """The token endpoint refused to issue a token (RFC 6749 section 5.2 error fields)."""

    code = "OAUTH_ERROR"

    def __init__(
        self,
        error: str,
        description: str | None = None,
        *,
        status_code: int | None = None,
        token_url: str | None = None,
    ) -> None:
        self.error = error
        self.description = description
        self.status_code = status_code
        self.token_url = token_url
        text = error + (f": {description}" if description else "")
        if token_url:
            text = f"token endpoint {token_url} refused: {text}"
        if status_code is not None:
            text += f" (HTTP {status_code})"
        super().__init__(text)


class WebhookError(InterlinkError):
    """A webhook delivery could not be accepted."""

    code = "WEBHOOK_ERROR"


class SignatureError(WebhookError):
    """A webhook delivery failed verification; nothing of it may be accepted.

    `status` is what the receiving route answers: 401 when the signature (or the API key) is
    missing or does not match, or the signed timestamp is outside the tolerance; 400 when a
    header cannot be parsed. `reason` is a short fixed word for the rejected-deliveries log
    (`signature_mismatch`, `malformed_header`, ...; see `interlink.webhooks.REJECT_REASONS`).
    The message never quotes a secret, and never the header values themselves.
    """

    code = "INVALID_SIGNATURE"

    def __init__(self, message: str, *, reason: str, status: int = 401) -> None:
        if status not in (400, 401):
            raise ValueError(f"a SignatureError answers 400 or 401; got {status}")
        self.reason = reason
        self.status = status
        super().__init__(message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={str(self)!r}, reason={self.reason!r}, "
            f"status={self.status!r})"
        )


class SyncError(InterlinkError):
    """A pipeline run could not go on."""

    code = "SYNC_ERROR"

    def __init__(self, message: str, *, pipeline: str | None = None) -> None:
        self.pipeline = pipeline
        super().__init__(f"pipeline {pipeline}: {message}" if pipeline else message)


class AccountsFailedError(SyncError):
    """A pipeline run for every connected account (`account: "*"`) in which some accounts'
    runs failed; `causes` are their errors (the job retries only if one may pass)."""

    def __init__(
        self, message: str, *, pipeline: str | None = None, causes: list[BaseException]
    ) -> None:
        self.causes = causes
        super().__init__(message, pipeline=pipeline)


class PipelineLockedError(SyncError):
    """Another run of the same pipeline is in progress; runs of one pipeline never overlap."""

    code = "CONFLICT"


class StateMismatchError(SyncError):
    """The stored cursor or checkpoint was made for another version of the source (its path,
    params, pagination, records or incremental settings changed) or of the pipeline's
    filter (removed or changed): rerun with `--full-refresh`, or set `on_source_change` on
    the pipeline."""

    code = "STATE_MISMATCH"
    exit_code = 2


class RecordError(SyncError):
    """One record failed at one step (map, filter, write); it is recorded and the batch goes on."""

    code = "RECORD_ERROR"

    def __init__(
        self, message: str, *, pipeline: str | None = None, key: str | None = None, step: str
    ) -> None:
        self.key = key
        self.step = step
        super().__init__(f"record {key} ({step}): {message}", pipeline=pipeline)


class JobError(InterlinkError):
    """Something about a queued job: it is missing, was cancelled, or took too long."""

    code = "JOB_ERROR"

    def __init__(self, message: str, *, job_id: int | None = None) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: {message}" if job_id is not None else message)


class JobNotFoundError(JobError):
    """No job has this id."""

    code = "NOT_FOUND"


class JobNotFoundApiError(NotFoundError, JobNotFoundError):
    """404 on a job's route (`GET /jobs/{id}`, `POST /jobs/{id}/cancel`).

    It is a `NotFoundError`, with the HTTP context of every `ApiError` (status code, request
    id, method, URL, `error_code`, `details`), and a `JobNotFoundError` with `job_id`, so
    either `except` clause catches it:

    ```python
    try:
        client.get_job(42)
    except JobNotFoundError as error:
        print(error.job_id, error.request_id)
    ```
    """

    def __init__(self, message: str, *, job_id: int, **kwargs: Any) -> None:
        # ApiError.__init__ runs JobError.__init__ through the MRO (without a job id), so
        # the id is set afterwards.
        super().__init__(message, **kwargs)
        self.job_id = job_id

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", job_id={self.job_id!r})"


class JobCancelledError(JobError):
    """The job was cancelled; raised inside a running job to stop it at its next batch."""

    code = "CANCELLED"


class JobTimeoutError(JobError):
    """`wait_for_job` stopped waiting; the job itself goes on."""

    code = "TIMEOUT"


class QueueSchemaError(JobError):
    """The database's job-queue schema is older than the code that runs on it (Procrastinate
    was upgraded, its migrations were not applied): migrate it, then start again."""

    code = "QUEUE_SCHEMA_OUTDATED"
    exit_code = 2
