"""Prometheus metrics (``/metrics``), one registry per app."""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("pixelmerge_http_requests_total", "HTTP requests answered",
                                ["method", "status"], registry=self.registry)
        self.latency = Histogram("pixelmerge_http_request_seconds", "HTTP request latency",
                                 registry=self.registry)
        self.renders = Counter("pixelmerge_renders_total", "Render requests answered",
                               ["format", "cached"], registry=self.registry)
        self.render_failures = Counter("pixelmerge_render_failures_total", "Failed renders",
                                       ["code"], registry=self.registry)


def init_app(app: Flask) -> None:
    metrics = app.extensions["metrics"] = Metrics()

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def observe(response):
        metrics.requests.labels(request.method, str(response.status_code)).inc()
        started = getattr(g, "started", None)
        if started is not None:
            elapsed = time.perf_counter() - started
            metrics.latency.observe(elapsed)
            # lets a client tell time spent in the app from time spent on the way
            response.headers["Server-Timing"] = f"app;dur={elapsed * 1000:.2f}"
        return response
