"""A business number's circuit breaker: the pure state machine of
:mod:`lawhub_actors.core.breaker` held by one actor per number at
:func:`paths.breaker_of`; every change is logged and fed (``circuit.changed``).
After each message it leaves its (immutable) state in ``Services.circuits``:
the API checks a send against that view instead of asking the actor (an ask
per send was two thread switches and a wait on the actor's mailbox).

Several nodes share what they learn (:mod:`lawhub_actors.adapters.breaker_board`):
a circuit this node opens is posted, and every half second the breaker
looks whether another node opened it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from lawhub_actors.actors.services import CircuitView, Services
from lawhub_actors.adapters.breaker_board import LOOK_EVERY_S
from lawhub_actors.core import breaker
from lawhub_actors.settings import Breaker as BreakerTuning
from supervisors import Actor

log = structlog.get_logger("lawhub.outbound")


@dataclass(frozen=True, slots=True)
class MayCall:
    """Ask: ``(allowed, seconds until it may be tried again)``."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    trip: bool = False


@dataclass(frozen=True, slots=True)
class _Look:
    """Self-sent: has another node opened this number's circuit? (Each
    incarnation keeps its own chain: a restart's new chain replaces it.)"""

    chain: object


def breaker_policy(tuning: BreakerTuning) -> breaker.BreakerPolicy:
    return breaker.BreakerPolicy(
        failure_threshold=tuning.failure_threshold, failure_rate=tuning.failure_rate,
        window=tuning.window, cooldown_s=tuning.cooldown_s,
        cooldown_max_s=tuning.cooldown_max_s, half_open_probes=tuning.half_open_probes,
    )


class NumberBreaker(Actor):
    """The number's circuit; its thresholds follow the live ``[breaker]``
    config without resetting the state (an open circuit stays open)."""

    def __init__(self, services: Services, tenant: str, phone_number_id: str,
                 clock: Callable[[], float]) -> None:
        self._services = services
        self._tenant = tenant
        self._number = phone_number_id
        self._tuning = services.settings.breaker
        self._state = breaker.BreakerState(breaker_policy(self._tuning))
        self._clock = clock
        self._chain = object()

    def receive(self, message: Any) -> Any:
        try:
            return self._handle(message)
        finally:
            self._publish()

    def _handle(self, message: Any) -> Any:
        self._follow_config()
        now = self._clock()
        if isinstance(message, MayCall):
            allowed, new = breaker.may_call(self._state, now)
            self._move(new, now)
            return allowed, breaker.retry_after(self._state, now)
        if isinstance(message, Outcome):
            self._move(breaker.record(self._state, now, message.ok, trip=message.trip), now)
            return None
        if isinstance(message, _Look):
            if message.chain is self._chain:
                self._look(now)
            return None
        return super().receive(message)

    def on_start(self) -> None:
        self._publish()
        self.context.show(circuit=self._state.name.value, next_probe_at=None)
        self.context.tell_self_later(LOOK_EVERY_S, _Look(self._chain))

    def on_stop(self) -> None:
        """A retired number's view goes with it (a restart publishes anew;
        a successor that already published keeps its own)."""
        view = self._services.circuits.get(self._number)
        if view is not None and view.state is self._state:
            del self._services.circuits[self._number]

    def _publish(self) -> None:
        view = self._services.circuits.get(self._number)
        if view is None or view.state is not self._state:
            self._services.circuits[self._number] = CircuitView(self._state, self._clock)

    def _look(self, now: float) -> None:
        posted = self._services.breakers.look(self._number)
        if posted is not None:
            until, opens = posted
            # the board's times are wall clock; the breaker's, this actor's clock
            self._move(breaker.opened_elsewhere(self._state, now, now + until - time.time(),
                                                opens), now, elsewhere=True)
        self.context.tell_self_later(LOOK_EVERY_S, _Look(self._chain))

    def _follow_config(self) -> None:
        settings = self._services.settings
        if settings.breaker is not self._tuning:
            self._tuning = settings.breaker
            self._state = replace(self._state, policy=breaker_policy(self._tuning))
        self._tenant = settings.tenant_id_for(self._number) or self._tenant

    def _move(self, new: breaker.BreakerState, now: float, *, elsewhere: bool = False) -> None:
        old, self._state = self._state, new
        if old.name is new.name:
            return
        self._publish()  # before the change is fed: a client told of it finds the API agree
        wait = breaker.retry_after(new, now)
        if new.name is breaker.Circuit.OPEN and not elsewhere:  # the other nodes follow
            self._services.breakers.post(self._number, time.time() + wait, new.opens)
        probe_at = datetime.fromtimestamp(time.time() + wait, UTC).isoformat() if wait else None
        self.context.show(circuit=new.name.value, next_probe_at=probe_at)
        log.warning("circuit_changed", tenant=self._tenant, phone_number_id=self._number,
                    circuit=new.name.value)
        data = {"phone_number_id": self._number, "from": old.name.value, "to": new.name.value,
                "retry_after_s": round(breaker.retry_after(new, now), 3)}
        tenant = self._tenant
        self._services.store.write(lambda tx: tx.emit(tenant, "circuit.changed", data))
