"""Webhooks interlink receives: signature verification today; the inbox and dispatch next.

```python
from interlink.webhooks import verify

verified = verify(config.webhooks["billing"], headers, body, now=time.time())
# Verified(scheme='stripe', delivery_id='evt_1...', event_type='invoice.paid', timestamp=...)
```

`verify` is pure (no clock, no I/O): one verifier per scheme of `webhooks:` (Standard
Webhooks and Svix, Stripe, GitHub, Shopify, Slack, generic HMAC), constant-time comparison
against every active secret, a tolerance on signed timestamps in both directions, and a
`SignatureError` (400 or 401, with a `reason` from `REJECT_REASONS`) for anything that does
not check out. `sign` builds the headers a sender would send, for tests and benchmarks.
"""

from __future__ import annotations

from interlink.webhooks._actions import WebhookEvent, match_action
from interlink.webhooks._dispatch import DeliveryFailed, job_kinds, process_delivery
from interlink.webhooks._held import release_chore, release_held, switch_on_releasing
from interlink.webhooks._inbox import (
    Arrival,
    Inbox,
    InboxClosedError,
    InboxFullError,
    Refusal,
    Stored,
)
from interlink.webhooks._inbox_process import InboxWriterError, ProcessInbox
from interlink.webhooks._inputs import (
    MAX_HEADER_LENGTH,
    MAX_SIGNATURES,
    REJECT_REASONS,
    HeaderInput,
    Verified,
)
from interlink.webhooks._job import BATCH_SIZE, PROCESS_KIND, batch_job, process_job
from interlink.webhooks._replay import MAX_REPLAY, replay, replay_failed
from interlink.webhooks._shown import delivery_details, shown_headers
from interlink.webhooks._signature import SCHEME_DEFAULTS, SchemeDefaults, sign, verify

__all__ = [
    "DeliveryFailed",
    "WebhookEvent",
    "job_kinds",
    "match_action",
    "process_delivery",
    "release_chore",
    "release_held",
    "switch_on_releasing",
    "BATCH_SIZE",
    "PROCESS_KIND",
    "batch_job",
    "Arrival",
    "Inbox",
    "InboxClosedError",
    "InboxFullError",
    "InboxWriterError",
    "ProcessInbox",
    "Refusal",
    "Stored",
    "process_job",
    "MAX_HEADER_LENGTH",
    "MAX_REPLAY",
    "MAX_SIGNATURES",
    "REJECT_REASONS",
    "SCHEME_DEFAULTS",
    "HeaderInput",
    "SchemeDefaults",
    "Verified",
    "delivery_details",
    "replay",
    "replay_failed",
    "shown_headers",
    "sign",
    "verify",
]
