"""Retirement: what left the config keeps its actors until its work is done.

A reload that removes a tenant or a phone number does not stop their actors
at once. They *retire*: their session pool, limiter and breaker stay as
they were, and webhook updates for their numbers still reach them
(``LiveConfig.tenant_id_for``), until nothing of theirs is in flight:

- no outbound message of theirs unfinished in the store;
- for a tenant, no update queued at its session shards or waiting on a slow
  step in the dispatcher (``InFlight``).

Then one more adoption drops them. Each tenant and number retires within
``[supervision] retire_timeout_s`` of leaving the config, whatever later
reloads do; what is still unfinished then is dropped anyway (a send left
behind goes to the DLQ as ``number_removed``, an update to quarantine).

One watcher thread runs while anything retires, polling; it works under
the runtime's reconfiguration lock, so it never races a reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.inbound_messages import InFlight
from lawhub_actors.actors.tree import Retiring
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.store import Store
from lawhub_actors.live_config import LiveConfig
from lawhub_actors.settings import PhoneNumber, Settings, Tenant
from supervisors import Registry

log = structlog.get_logger("lawhub.retirement")

POLL_S = 0.5
ASK_TIMEOUT_S = 5.0

Adopt = Callable[[Retiring], list[str]]
"""Has the tree adopt the running config plus what retires; the problems."""


class Retirements:
    def __init__(self, store: Store, registry: Registry, config: LiveConfig, adopt: Adopt,
                 lock: threading.Lock) -> None:
        self._store = store
        self._registry = registry
        self._config = config
        self._adopt = adopt
        self._lock = lock
        self._retiring = Retiring()
        self._due: dict[str, float] = {}
        """When each retiring tenant (``tenant:<id>``) or number (``number:<id>``)
        is dropped whatever is still in flight."""
        self._watcher: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def current(self) -> Retiring:
        return self._retiring

    def after_reload(self, old: Settings, new: Settings) -> Retiring:
        """What retires once ``new`` runs (under the lock, before the tree
        adopts it): tenants and numbers ``old`` (or an earlier reload still
        retiring) had and ``new`` has not. Starts the watcher if needed."""
        self._set(_retiring_after(old, new, self._retiring), new.supervision.retire_timeout_s)
        if self._retiring != Retiring() and self._watcher is None and not self._stopped.is_set():
            self._watcher = threading.Thread(target=self._watch, name="config-retirements",
                                             daemon=True)
            self._watcher.start()
        return self._retiring

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            watcher = self._watcher
        if watcher is not None:
            watcher.join()

    def _set(self, retiring: Retiring, timeout_s: float) -> None:
        keys = set(_keys(retiring))
        now = time.monotonic()
        self._due = {key: self._due.get(key, now + timeout_s) for key in keys}
        self._retiring = retiring
        self._config.retiring(retiring.routes())

    def _watch(self) -> None:
        while not self._stopped.wait(POLL_S):
            with self._lock:
                retiring = self._retiring
                busy = self._still_busy(retiring)
                now = time.monotonic()
                left = Retiring(
                    tuple(t for t in busy.tenants if self._due[f"tenant:{t.id}"] > now),
                    tuple((t, n) for t, n in busy.numbers if self._due[f"number:{n.id}"] > now),
                )
                if left != busy:
                    log.warning("retirement_timed_out", tenants=_ids(busy.tenants, left.tenants),
                                numbers=_ids(_numbers(busy), _numbers(left)))
                if left != retiring:
                    self._set(left, 0.0)
                    if problems := self._adopt(left):
                        log.error("retirement_not_adopted", paths=problems)
                    log.info("retired", tenants=_ids(retiring.tenants, left.tenants),
                             numbers=_ids(_numbers(retiring), _numbers(left)))
                if left == Retiring():
                    self._watcher = None
                    return

    def _still_busy(self, retiring: Retiring) -> Retiring:
        """The part of ``retiring`` that still has work in flight."""
        unfinished = self._store.read(outbound_store.unfinished_by_number)
        busy_tenants = {tenant for tenant, _ in unfinished}
        busy_numbers = {number for _, number in unfinished}
        return Retiring(
            tuple(t for t in retiring.tenants
                  if t.id in busy_tenants or self._sessions_busy(t.id)
                  or self._waits_in_dispatcher(t.id)),
            tuple((t, n) for t, n in retiring.numbers if n.id in busy_numbers),
        )

    def _sessions_busy(self, tenant: str) -> bool:
        prefix = paths.sessions_of(tenant) + "/"
        return any(node.mailbox.load() for node in self._registry.nodes()
                   if node.path.startswith(prefix))

    def _waits_in_dispatcher(self, tenant: str) -> bool:
        """Whether updates of ``tenant`` wait on a slow step (a dispatcher
        that does not answer now counts as yes: look again later)."""
        try:
            return bool(self._registry.ask(paths.DISPATCHER, InFlight(tenant),
                                           timeout=ASK_TIMEOUT_S))
        except Exception:  # noqa: BLE001 - restarting or stopping: not known to be idle
            return True


def _retiring_after(old: Settings, new: Settings, before: Retiring) -> Retiring:
    tenants = {t.id: t for t in (*before.tenants, *old.tenants)}
    kept_tenants = {t.id for t in new.tenants}
    numbers = {n.id: (tenant, n) for tenant, n in before.numbers}
    numbers |= {n.id: (t.id, n) for t in old.tenants if t.id in kept_tenants
                for n in t.phone_numbers}
    kept_numbers = {n.id for t in new.tenants for n in t.phone_numbers}
    return Retiring(
        tuple(t for tenant_id, t in tenants.items() if tenant_id not in kept_tenants),
        tuple(pair for number_id, pair in numbers.items() if number_id not in kept_numbers),
    )


def _keys(retiring: Retiring) -> Iterable[str]:
    yield from (f"tenant:{t.id}" for t in retiring.tenants)
    yield from (f"number:{n.id}" for n in _numbers(retiring))


def _numbers(retiring: Retiring) -> list[PhoneNumber]:
    return [n for _, n in retiring.numbers]


def _ids(items: Iterable[Tenant | PhoneNumber], but: Iterable[Tenant | PhoneNumber]) -> list[str]:
    kept = {item.id for item in but}
    return [item.id for item in items if item.id not in kept]
