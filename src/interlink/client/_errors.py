"""The one error the jobs API client adds to interlink's tree (errors.py)."""

from __future__ import annotations

from typing import Any

from interlink.errors import JobNotFoundError, NotFoundError

__all__ = ["JobNotFoundApiError"]


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
