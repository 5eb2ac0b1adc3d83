"""A remote intent/urgency model over HTTP, with the rules as its safety net.

``HttpClassifier`` implements :class:`~lawhub_actors.core.assist.Classifier`:
it takes :class:`~lawhub_actors.core.masking.MaskedText` only (checked at
runtime too), so the remote service can never be sent raw customer text.

Contract with the service::

    POST {url}   {"text": "<masked text>"}
    200          {"intent": "family", "urgency": "high", "confidence": 0.82}

Any other outcome falls back to the rule classifier's answer, with a first
reason saying why (the remote's own words never reach the reasons)::

    fallback:timeout         connect/read/write/pool timeout (each phase ``timeout_s``)
    fallback:transport       connection refused, reset, protocol error
    fallback:http_<status>   any non-2xx status
    fallback:bad_json        the body is not JSON
    fallback:invalid_answer  JSON, but not the shape above (unknown enum value,
                             confidence outside 0..1, missing field)

A successful answer carries the single reason ``"remote"``. Synchronous on
purpose: it runs in the assist actor's thread.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lawhub_actors.adapters.http_client import OwnsHttpClient
from lawhub_actors.core.assist import Classification, Classifier, Intent, RuleClassifier, Urgency
from lawhub_actors.core.masking import MaskedText

__all__ = ["HttpClassifier"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    intent: Intent
    urgency: Urgency
    confidence: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


class HttpClassifier(OwnsHttpClient):
    """Classify by POSTing masked text to ``url``; fall back to rules on any failure."""

    def __init__(
        self,
        url: str,
        timeout_s: float,
        client: httpx.Client | None = None,
        *,
        fallback: Classifier | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._url = url
        self._timeout = httpx.Timeout(timeout_s)
        super().__init__(client, lambda: httpx.Client(timeout=self._timeout))
        self._fallback: Classifier = fallback if fallback is not None else RuleClassifier()

    def classify(self, text: MaskedText) -> Classification:
        if not isinstance(text, MaskedText):
            raise TypeError("HttpClassifier takes MaskedText only: call mask() first")
        try:
            response = self._client.post(
                self._url, json={"text": text.text}, timeout=self._timeout
            )
        except httpx.TimeoutException:
            return self._fall_back(text, "timeout")
        except httpx.HTTPError:
            return self._fall_back(text, "transport")
        if not response.is_success:
            return self._fall_back(text, f"http_{response.status_code}")
        try:
            answer = _Answer.model_validate_json(response.content)
        except ValidationError as error:
            bad_json = any(e["type"] == "json_invalid" for e in error.errors())
            return self._fall_back(text, "bad_json" if bad_json else "invalid_answer")
        return Classification(answer.intent, answer.urgency, answer.confidence, ("remote",))

    def _fall_back(self, text: MaskedText, why: str) -> Classification:
        local = self._fallback.classify(text)
        return Classification(
            local.intent, local.urgency, local.confidence, (f"fallback:{why}", *local.reasons)
        )
