"""interlink's pipelines and jobs as Prefect 3 tasks and a ready flow.

```python
from prefect import flow
from interlink.prefect import run_pipeline

@flow
def sync_customers() -> None:
    run_pipeline("customers", config="interlink.yaml")
```

- `run_pipeline`: run a pipeline in this process (`interlink run`); its `RunCounts`.
- `read_resource`: the first `limit` records of a resource (`interlink read`).
- `submit_job`, `wait_for_job`, `run_job`: a pipeline run as a job on a remote
  `interlink serve` (`interlink.client`).
- `run_pipelines`: a flow that runs several pipelines in dependency order.

Every task publishes its counts as a table artifact, sends interlink's log records to
the task run's log, and is made with `retries=0`: interlink retries requests and resumes
runs itself (docs/prefect.md). Needs the extra: `pip install 'interlink[prefect]'`;
`import interlink` alone never imports Prefect.
"""

from __future__ import annotations

try:
    import prefect  # noqa: F401  (the extra's presence, checked once)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "interlink.prefect needs Prefect 3, which is not installed: "
        "pip install 'interlink[prefect]'"
    ) from exc

from ._artifacts import artifact_key, publish_counts
from ._counts import COUNT_FIELDS, RunCounts
from ._errors import PipelineRunError, PipelinesFailedError
from ._flow import run_pipelines
from ._job_tasks import API_KEY_ENV, SERVER_URL_ENV, run_job, submit_job, wait_for_job
from ._logs import forward_logs
from ._order import Step, plan_order
from ._pipeline_task import run_pipeline
from ._project import ConfigLike, Project, load_project
from ._read_task import read_resource

__all__ = [
    "API_KEY_ENV",
    "COUNT_FIELDS",
    "SERVER_URL_ENV",
    "ConfigLike",
    "PipelineRunError",
    "PipelinesFailedError",
    "Project",
    "RunCounts",
    "Step",
    "artifact_key",
    "forward_logs",
    "load_project",
    "plan_order",
    "publish_counts",
    "read_resource",
    "run_job",
    "run_pipeline",
    "run_pipelines",
    "submit_job",
    "wait_for_job",
]
