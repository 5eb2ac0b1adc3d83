"""The application's supervision tree, built from :class:`Settings`.

::

    root (one_for_one)
    ├── infra (rest_for_one)      store, bus, feed: later issues add them here
    ├── inbound (one_for_one)
    │   └── sessions (one_for_one)
    │       └── <tenant>          one supervisor per law firm
    └── outbound (one_for_one)

The strategies are part of the tree's shape; intensity, period, backoff,
shutdown times and mailbox bounds come from ``[supervision]``, and any
supervisor's flags can be overridden by its path in
``[supervision.overrides."<path>"]``.
"""

from __future__ import annotations

from collections.abc import Callable

from lawhub_actors.settings import Settings
from supervisors import (
    Backoff,
    ChildSpec,
    NodeSnapshot,
    Strategy,
    SupervisorFlags,
    Tree,
    supervisor_spec,
)

ROOT = "root"
"""How ``[supervision.overrides]`` names the root supervisor."""

GiveUp = Callable[[BaseException | None], None]


def supervisor_flags(settings: Settings, path: str, strategy: Strategy) -> SupervisorFlags:
    supervision = settings.supervision
    tuning = supervision.tuning_for(path, strategy.value)
    backoff = supervision.backoff
    return SupervisorFlags(
        strategy=Strategy(tuning.strategy),
        max_restarts=tuning.max_restarts,
        period_s=tuning.period_s,
        backoff=Backoff(
            min_s=backoff.min_s,
            max_s=backoff.max_s,
            multiplier=backoff.multiplier,
            jitter=backoff.jitter,
        ),
        start_timeout_s=supervision.start_timeout_s,
    )


def root_spec(settings: Settings) -> ChildSpec:
    def sup(path: str, strategy: Strategy, children: list[ChildSpec]) -> ChildSpec:
        return supervisor_spec(
            path.rpartition("/")[2], supervisor_flags(settings, path, strategy), children
        )

    tenants = [
        sup(f"inbound/sessions/{tenant.id}", Strategy.ONE_FOR_ONE, [])
        for tenant in settings.tenants
    ]
    return sup(
        ROOT,
        Strategy.ONE_FOR_ONE,
        [
            sup("infra", Strategy.REST_FOR_ONE, []),
            sup("inbound", Strategy.ONE_FOR_ONE, [
                sup("inbound/sessions", Strategy.ONE_FOR_ONE, tenants),
            ]),
            sup("outbound", Strategy.ONE_FOR_ONE, []),
        ],
    )


class AppRuntime:
    """Starts and stops the application tree; answers health and snapshots."""

    def __init__(self, settings: Settings, on_give_up: GiveUp | None = None) -> None:
        self.settings = settings
        self.tree = Tree(
            root_spec(settings),
            on_give_up=on_give_up,
            start_timeout_s=settings.supervision.start_timeout_s * 4,
        )

    def start(self) -> AppRuntime:
        self.tree.start()
        return self

    def stop(self) -> None:
        self.tree.stop(timeout_s=self.settings.server.shutdown_timeout_s)

    def ready(self) -> bool:
        root = self.tree.registry.find("")
        return root is not None and root.state == "running" and not self.tree.gave_up.is_set()

    def snapshot(self) -> NodeSnapshot:
        return self.tree.snapshot()
