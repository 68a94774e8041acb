"""Metrics: what the service counts and times, for Prometheus (GET /metrics).

Modules: registry (the metrics of an app), tallies (every answer and cache
lookup, counted in plain numbers), middleware (every answer Falcon sends),
export (the endpoint, every worker added up), directory (where a server's
workers keep them together), shared (a worker's tallies written there).
"""

from .export import MetricsExport
from .middleware import RequestMetrics
from .registry import Metrics

__all__ = ['Metrics', 'MetricsExport', 'RequestMetrics']
