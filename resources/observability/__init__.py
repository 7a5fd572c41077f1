"""Observability: the metrics the exporter shows and the cost report, computed from what the
Dagster instance and the policy store hold (no Dagster run needs to be watched live)."""
