"""Every use of pykka's private API, in one module.

pykka's public API has no way to run an actor's loop differently, so the
supervisors lean on three things pykka keeps private:

- :class:`Envelope` (``pykka._envelope``): what an actor's inbox holds, a
  message and the future to answer. The supervisors' mailboxes hold the same
  objects, so pykka's own ``ActorRef.tell`` and ``ask`` work on them as they
  are.
- :class:`ActorStop` (``pykka.messages._ActorStop``): what
  ``ActorRef.stop()`` sends; a cell treats it as its own stop.
- ``ThreadingActor._actor_loop_running``: the body of pykka's actor loop,
  between ``on_start`` and the teardown. :class:`OwnLoop` replaces it with
  :meth:`OwnLoop.run_loop`, which its subclasses write (pykka's version
  stops an actor whose ``tell`` handler raised and drops its queue; a cell
  reports the failure to its supervisor and keeps the queue).

Nothing else in ``supervisors`` (or in an application) imports from pykka's
private modules. ``tests/supervisors/test_pykka_seam.py`` checks each of
these against the pykka that is installed and fails loudly on a release that
moved or reshaped one; ``pyproject.toml`` pins pykka to the minor version
that test was last run on (:data:`PYKKA_TESTED`).
"""

from __future__ import annotations

import abc

import pykka
from pykka._envelope import Envelope
from pykka.messages import _ActorStop as ActorStop

__all__ = ["PYKKA_TESTED", "ActorStop", "Envelope", "OwnLoop"]

PYKKA_TESTED = "4.5"
"""The pykka minor version the seam was checked against."""


class OwnLoop(pykka.ThreadingActor, abc.ABC):
    """A pykka threading actor whose loop body is :meth:`run_loop`."""

    @abc.abstractmethod
    def run_loop(self) -> None:
        """Take and handle messages until ``actor_stopped`` is set."""

    def _actor_loop_running(self) -> None:
        self.run_loop()
