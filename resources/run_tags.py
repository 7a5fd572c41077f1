"""The run tags Maestro sets: only what users filter or group runs by in the Dagster UI.

Everything else about a run (policy decisions, versions, sources) lives in job metadata, op
output metadata or the policy store, so the runs list stays readable.
"""

WORKFLOW_TAG = "maestro/workflow"
TENANT_TAG = "maestro/tenant"
"""The run queue's per-tenant limits (`tag_concurrency_limits`) key on it."""
REQUEST_TAG = "maestro/request_id"
"""Set by the policy gate on the run it launches for a `maestro submit` request."""
COST_TAG = "maestro/cost_usd"
"""The run's spend so far (the cost ledger's total): the UI's cost column."""
TRACEPARENT_TAG = "maestro/traceparent"
"""The W3C traceparent of the run's root span (docs/observability.md): steps in any process
parent their spans to it. Set when tracing is on; a run without it derives the same context."""
DEFAULT_TENANT = "default"
COMPENSATES_TAG = "maestro/compensates"
"""On a saga run (`<workflow>__compensate`): the id of the failed run it compensates."""
