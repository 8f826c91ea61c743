"""Token usage of a turn: :class:`Usage` (API usage) and :class:`ModelUsage` (per model).

The CLI reports usage as JSON objects: ``usage`` on assistant and result
lines (the Anthropic API's snake_case ``BetaUsage``), and ``modelUsage`` on
results (camelCase, one entry per model, with its cost). Both classes here are
``dict`` subclasses holding exactly what the CLI sent, with typed read-only
properties on top::

    result.usage.input_tokens          # typed (0 when the CLI left it out)
    result.usage["input_tokens"]       # still a dict, as in claude-agent-sdk
    result.model_usage["claude-x"].cost_usd

A ``dict`` subclass (not an attrs class) on purpose: code written for
claude-agent-sdk indexes these as dicts and serialises them as JSON, and both
keep working unchanged; unknown keys are never lost.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelUsage", "Usage", "model_usage_of", "usage_of"]


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    return 0


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Usage(dict[str, Any]):
    """Token usage as the API reports it (a dict with typed properties).

    Missing or ill-typed counters read as ``0``; missing optional fields as
    ``None``.
    """

    __slots__ = ()

    @property
    def input_tokens(self) -> int:
        """Input tokens not read from or written to the cache."""
        return _int(self.get("input_tokens"))

    @property
    def output_tokens(self) -> int:
        """Output tokens generated."""
        return _int(self.get("output_tokens"))

    @property
    def cache_creation_input_tokens(self) -> int:
        """Input tokens written to the prompt cache."""
        return _int(self.get("cache_creation_input_tokens"))

    @property
    def cache_read_input_tokens(self) -> int:
        """Input tokens read from the prompt cache."""
        return _int(self.get("cache_read_input_tokens"))

    @property
    def total_input_tokens(self) -> int:
        """All input tokens: plain, cache writes and cache reads."""
        return (self.input_tokens + self.cache_creation_input_tokens
                + self.cache_read_input_tokens)

    @property
    def service_tier(self) -> str | None:
        """``"standard"``, ``"priority"``, ``"batch"``, when reported."""
        return _opt_str(self.get("service_tier"))

    @property
    def server_tool_use(self) -> dict[str, int]:
        """Server tool requests (``web_search_requests``, ``web_fetch_requests``)."""
        value = self.get("server_tool_use")
        if not isinstance(value, dict):
            return {}
        return {k: _int(v) for k, v in value.items() if isinstance(k, str)}

    @property
    def web_search_requests(self) -> int:
        """Web searches the API ran."""
        return self.server_tool_use.get("web_search_requests", 0)

    @property
    def cache_creation(self) -> dict[str, int]:
        """Cache writes by lifetime (``ephemeral_5m_input_tokens``...)."""
        value = self.get("cache_creation")
        if not isinstance(value, dict):
            return {}
        return {k: _int(v) for k, v in value.items() if isinstance(k, str)}

    @property
    def inference_geo(self) -> str | None:
        """Where inference ran, when reported."""
        return _opt_str(self.get("inference_geo"))

    @property
    def speed(self) -> str | None:
        """``"standard"`` or ``"fast"``, when reported."""
        return _opt_str(self.get("speed"))

    @property
    def iterations(self) -> list[Any]:
        """Per-iteration usage, when reported."""
        value = self.get("iterations")
        return value if isinstance(value, list) else []

    def __repr__(self) -> str:
        return (f"Usage(input_tokens={self.input_tokens}, output_tokens={self.output_tokens}, "
                f"cache_read_input_tokens={self.cache_read_input_tokens}, "
                f"cache_creation_input_tokens={self.cache_creation_input_tokens})")


class ModelUsage(dict[str, Any]):
    """One model's usage and cost in a result's ``modelUsage`` (camelCase on the wire)."""

    __slots__ = ()

    @property
    def input_tokens(self) -> int:
        """``inputTokens``."""
        return _int(self.get("inputTokens"))

    @property
    def output_tokens(self) -> int:
        """``outputTokens``."""
        return _int(self.get("outputTokens"))

    @property
    def cache_read_input_tokens(self) -> int:
        """``cacheReadInputTokens``."""
        return _int(self.get("cacheReadInputTokens"))

    @property
    def cache_creation_input_tokens(self) -> int:
        """``cacheCreationInputTokens``."""
        return _int(self.get("cacheCreationInputTokens"))

    @property
    def web_search_requests(self) -> int:
        """``webSearchRequests``."""
        return _int(self.get("webSearchRequests"))

    @property
    def cost_usd(self) -> float:
        """``costUSD``: this model's cost so far, in US dollars."""
        value = self.get("costUSD")
        return float(value) if value.__class__ in (int, float) else 0.0

    @property
    def context_window(self) -> int:
        """``contextWindow``."""
        return _int(self.get("contextWindow"))

    @property
    def max_output_tokens(self) -> int:
        """``maxOutputTokens``."""
        return _int(self.get("maxOutputTokens"))

    def __repr__(self) -> str:
        return (f"ModelUsage(input_tokens={self.input_tokens}, "
                f"output_tokens={self.output_tokens}, cost_usd={self.cost_usd})")


def usage_of(value: object) -> Usage | None:
    """A :class:`Usage` for a decoded ``usage`` object (``None`` when it is not an object)."""
    return Usage(value) if isinstance(value, dict) else None


def model_usage_of(value: object) -> dict[str, ModelUsage] | None:
    """``{model: ModelUsage}`` for a decoded ``modelUsage`` object (``None`` when absent)."""
    if not isinstance(value, dict):
        return None
    return {k: ModelUsage(v) for k, v in value.items()
            if isinstance(k, str) and isinstance(v, dict)}
