"""HTTP API and dashboards over the time-series store."""
