"""Jobs: a durable queue in the configured database and the workers that drain it.

```python
from interlink.jobs import open_queue, pipeline_job

queue = open_queue(config, store)           # SQLite queue, or Procrastinate on PostgreSQL
job = queue.enqueue(pipeline_job("customers"))
await queue.work(JobKinds.default(), concurrency=4, stop=stop_event)
```
"""

from ._coalesce import enqueue_or_join
from ._defer_sql import JOB_ID, insert_jobs_from, queue_parameters
from ._factory import open_queue
from ._model import (
    PIPELINE_KIND,
    TERMINAL,
    Job,
    JobFilter,
    JobSpec,
    JobStatus,
    pipeline_job,
    retry_delay,
)
from ._queue import (
    JobContext,
    JobHandler,
    JobKinds,
    Outcome,
    Queue,
    WorkerStats,
    execute,
    final_attempt,
)
from ._schedules import Scheduler, latest_tick, pipeline_connections
from ._worker import run_worker

__all__ = [
    "JOB_ID",
    "enqueue_or_join",
    "insert_jobs_from",
    "queue_parameters",
    "PIPELINE_KIND",
    "TERMINAL",
    "Job",
    "JobContext",
    "JobFilter",
    "JobHandler",
    "JobKinds",
    "JobSpec",
    "JobStatus",
    "Outcome",
    "Queue",
    "Scheduler",
    "WorkerStats",
    "execute",
    "final_attempt",
    "latest_tick",
    "open_queue",
    "pipeline_connections",
    "pipeline_job",
    "retry_delay",
    "run_worker",
]
