"""OpenTelemetry for otpy and claudecode: telemetry events turned into spans and metrics.

Install the extra (``pip install "otpy[otel]"``), set up the OpenTelemetry
SDK as usual (exporters, providers), then::

    from otpy import telemetry_otel

    instrumentation = telemetry_otel.instrument()   # global providers, or pass yours
    ...
    instrumentation.uninstrument()

What it records (docs/otpy/telemetry.md, section OpenTelemetry):

* every claudecode turn is a span ``claudecode.turn`` from the turn's
  ``start`` to its ``stop`` (model, tokens, cost, session id, session name;
  status ERROR for an error result) or ``exception`` (the exception is
  recorded, status ERROR);
* a supervisor restart (and a give-up) is a span event: on the span current
  in the supervisor's process when there is one recording, else on a span of
  its own (``otpy.supervisor.restart``, zero length);
* metrics: ``claudecode.turns``, ``claudecode.turn.duration``,
  ``claudecode.tokens``, ``claudecode.cost``, ``claudecode.cli.live``,
  ``otpy.supervisor.restarts``, ``otpy.supervisor.give_ups``,
  ``otpy.dist.nodes`` and, when calls are sampled
  (`otpy.telemetry.sample_calls`), ``otpy.genserver.call.duration``.

Handlers run synchronously in the process that emits the event (see
`otpy.telemetry`); what they do here is bounded: a span started or ended, a
counter added to. The OpenTelemetry SDK's exporters do their own I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from otpy import telemetry

__all__ = ["EVENTS", "Instrumentation", "instrument"]

#: The event names the instrumentation listens to.
EVENTS: tuple[tuple[str, ...], ...] = (
    ("claudecode", "turn"),
    ("claudecode", "cli"),
    ("otpy", "supervisor", "restart"),
    ("otpy", "supervisor", "give_up"),
    ("otpy", "genserver", "call"),
    ("otpy", "dist", "node_up"),
    ("otpy", "dist", "node_down"),
)

_SCOPE = "otpy"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _session_attributes(md: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.system": "anthropic",
                                  "claudecode.session.pid": _text(md.get("session"))}
    if md.get("model"):
        attributes["gen_ai.request.model"] = str(md["model"])
    if md.get("session_id"):
        attributes["gen_ai.conversation.id"] = str(md["session_id"])
    if md.get("name") is not None:
        attributes["claudecode.session.name"] = _text(md["name"])
    return attributes


class Instrumentation:
    """Telemetry handlers that feed OpenTelemetry; made by `instrument`.

    Args:
        tracer_provider: the provider for spans (default: the global one).
        meter_provider: the provider for metrics (default: the global one).
        handler_id: the `otpy.telemetry` handler id (one instrumentation per id).
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None,
                 handler_id: str = "otpy.telemetry_otel") -> None:
        self.handler_id = handler_id
        self.tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.turns = meter.create_counter("claudecode.turns", unit="{turn}",
                                          description="Turns ended, by outcome")
        self.turn_duration = meter.create_histogram("claudecode.turn.duration", unit="s",
                                                    description="Duration of turns")
        self.tokens = meter.create_counter("claudecode.tokens", unit="{token}",
                                           description="Tokens used by turns, by type")
        self.cost = meter.create_counter("claudecode.cost", unit="USD",
                                         description="Cost of turns")
        self.live_clis = meter.create_up_down_counter("claudecode.cli.live", unit="{cli}",
                                                      description="Claude Code CLIs running")
        self.restarts = meter.create_counter("otpy.supervisor.restarts", unit="{restart}",
                                             description="Children restarted by supervisors")
        self.give_ups = meter.create_counter("otpy.supervisor.give_ups", unit="{supervisor}",
                                             description="Supervisors that gave up")
        self.nodes = meter.create_up_down_counter("otpy.dist.nodes", unit="{node}",
                                                  description="Connected nodes")
        self.call_duration = meter.create_histogram(
            "otpy.genserver.call.duration", unit="s",
            description="Duration of sampled GenServer calls")
        # session pid -> the span of its turn in progress
        self.open_turns: dict[Any, Span] = {}
        self.attached = False

    def attach(self) -> None:
        """Start listening (done by `instrument`)."""
        telemetry.attach(self.handler_id, EVENTS, self.handle)
        self.attached = True

    def uninstrument(self) -> None:
        """Stop listening; turns still open are ended (status unset)."""
        if self.attached:
            telemetry.detach(self.handler_id)
            self.attached = False
        for span in self.open_turns.values():
            span.end()
        self.open_turns.clear()

    # ------------------------------------------------------------ handlers

    def handle(self, event: tuple[str, ...], measurements: Mapping[str, Any],
               metadata: Mapping[str, Any]) -> None:
        """The telemetry handler: one event to spans and metrics."""
        if event[0] == "claudecode":
            if event[1] == "turn":
                self._turn(event[2], measurements, metadata)
            elif event[2] == "start":
                self.live_clis.add(1)
            elif event[2] == "exit":
                self.live_clis.add(-1)
            return
        kind = event[-1]
        if kind in ("restart", "give_up"):
            self._supervisor(kind, metadata)
        elif kind == "call":
            self.call_duration.record(float(measurements["duration"]),
                                      {"otpy.call.outcome": str(metadata.get("outcome"))})
        elif kind == "node_up":
            self.nodes.add(1)
        elif kind == "node_down":
            self.nodes.add(-1)

    def _turn(self, kind: str, m: Mapping[str, Any], md: Mapping[str, Any]) -> None:
        session = md.get("session")
        attributes = _session_attributes(md)
        if kind == "start":
            old = self.open_turns.pop(session, None)
            if old is not None:  # its end was never seen (the session was killed)
                old.end()
            self.open_turns[session] = self.tracer.start_span(
                "claudecode.turn", kind=trace.SpanKind.CLIENT, attributes=attributes)
            return
        span = self.open_turns.pop(session, None)
        model = attributes.get("gen_ai.request.model", "")
        duration = float(m.get("duration", 0.0))
        if span is None:  # a turn that started before the instrumentation
            span = self.tracer.start_span(
                "claudecode.turn", kind=trace.SpanKind.CLIENT, attributes=attributes,
                start_time=time.time_ns() - int(duration * 1e9))
        span.set_attributes(attributes)
        if kind == "stop":
            input_tokens = int(m.get("input_tokens", 0))
            output_tokens = int(m.get("output_tokens", 0))
            cost = float(m.get("cost_usd", 0.0))
            span.set_attributes({
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "claudecode.cost_usd": cost,
                "claudecode.result.subtype": str(md.get("subtype", "")),
            })
            outcome = "error" if md.get("is_error") else "ok"
            if outcome == "error":
                span.set_status(Status(StatusCode.ERROR, str(md.get("subtype", "error"))))
            self.tokens.add(input_tokens, {"claudecode.token.type": "input",
                                           "gen_ai.request.model": model})
            self.tokens.add(output_tokens, {"claudecode.token.type": "output",
                                            "gen_ai.request.model": model})
            self.cost.add(cost, {"gen_ai.request.model": model})
        else:
            outcome = "exception"
            reason = md.get("reason")
            exc = getattr(reason, "exception", None)
            if isinstance(exc, BaseException):
                span.record_exception(exc)
            else:
                span.add_event("exception", {"exception.type": type(reason).__name__,
                                             "exception.message": _text(reason)})
            span.set_status(Status(StatusCode.ERROR, _text(reason)))
        span.end()
        self.turns.add(1, {"claudecode.outcome": outcome, "gen_ai.request.model": model})
        self.turn_duration.record(duration, {"claudecode.outcome": outcome,
                                             "gen_ai.request.model": model})

    def _supervisor(self, kind: str, md: Mapping[str, Any]) -> None:
        attributes: dict[str, Any] = {"otpy.supervisor": _text(md.get("supervisor")),
                                      "otpy.child.id": _text(md.get("id"))}
        if kind == "restart":
            attributes["otpy.child.pid"] = _text(md.get("pid"))
            attributes["otpy.exit.reason"] = _text(md.get("reason"))
            attributes["otpy.restart.retry"] = bool(md.get("retry"))
            self.restarts.add(1, {"otpy.child.id": attributes["otpy.child.id"]})
        else:
            self.give_ups.add(1, {"otpy.child.id": attributes["otpy.child.id"]})
        name = f"otpy.supervisor.{kind}"
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(name, attributes)
            return
        span = self.tracer.start_span(name, attributes={"otpy.supervisor":
                                                         attributes["otpy.supervisor"]})
        span.add_event(name, attributes)
        span.end()


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None,
               handler_id: str = "otpy.telemetry_otel") -> Instrumentation:
    """Turn otpy's and claudecode's telemetry events into OpenTelemetry spans and metrics.

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        meter_provider: where metrics go (default: the global one).
        handler_id: the telemetry handler id (to run two instrumentations at once).

    Returns:
        The `Instrumentation`; call its ``uninstrument()`` to stop.

    Raises:
        ValueError: an instrumentation with this ``handler_id`` is attached already.
    """
    instrumentation = Instrumentation(tracer_provider, meter_provider, handler_id)
    instrumentation.attach()
    return instrumentation
