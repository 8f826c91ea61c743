"""OpenTelemetry SDK set up with in-memory exporters, for the tests of otpy.telemetry_otel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otpy import telemetry_otel


class Otel:
    """An instrumentation with in-memory span and metric exporters."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentation = telemetry_otel.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans_out.get_finished_spans() if name in (None, s.name)]

    def points(self, metric: str) -> list[Any]:
        """The data points of one metric (``[]`` if it recorded nothing)."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        return list(m.data.data_points)
        return []

    def total(self, metric: str, **attributes: Any) -> float:
        """The sum of a counter's points whose attributes include ``attributes``."""
        return sum(p.value for p in self.points(metric)
                   if all(p.attributes.get(k) == v for k, v in attributes.items()))

    def close(self) -> None:
        self.instrumentation.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.close()
