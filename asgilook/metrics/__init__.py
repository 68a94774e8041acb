"""Metrics: what the service counts and times, for Prometheus (GET /metrics).

Modules: registry (the metrics of an app), middleware (every answer Falcon
sends), export (the endpoint, every worker added up), directory (where a
server's workers keep them together).
"""

from .export import MetricsExport
from .middleware import RequestMetrics
from .registry import Metrics

__all__ = ['Metrics', 'MetricsExport', 'RequestMetrics']
