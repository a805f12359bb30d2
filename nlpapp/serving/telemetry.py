"""The server's Prometheus metrics (prometheus-client), in a registry of the app's own so
two servers in one process (tests) do not share counts. ``GET /metrics`` exposes them;
tokens per second is ``rate(nlpapp_generated_tokens_total[1m])``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("nlpapp_requests", "HTTP requests answered, by route and status.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("nlpapp_request_seconds", "Seconds from request to the end of its answer.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("nlpapp_requests_in_flight", "Admitted requests, queued or running.",
                               registry=self.registry)
        self.queue_depth = Gauge("nlpapp_queue_depth", "Jobs waiting for the model thread.", registry=self.registry)
        self.batch_size = Histogram("nlpapp_batch_size", "Inputs per model batch.", buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.batch_seconds = Histogram("nlpapp_batch_seconds", "Seconds per model batch.",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.generated_tokens = Counter("nlpapp_generated_tokens", "Tokens generated (OpenAI routes).",
                                        registry=self.registry)
        self.prompt_tokens = Counter("nlpapp_prompt_tokens", "Prompt tokens read (OpenAI routes).",
                                     registry=self.registry)

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
