"""pykka's private API, as the supervisors use it (supervisors/pykka_seam.py):
each test fails loudly when a pykka release moves or reshapes one of them."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pykka

from supervisors.pykka_seam import PYKKA_TESTED, ActorStop, Envelope, OwnLoop


def test_the_installed_pykka_is_the_minor_version_the_seam_was_checked_on() -> None:
    assert version("pykka").startswith(PYKKA_TESTED + "."), (
        f"pykka {version('pykka')}: check supervisors/pykka_seam.py against it, then update "
        "PYKKA_TESTED and the pin in pyproject.toml")


def test_an_envelope_carries_a_message_and_the_future_to_answer() -> None:
    future: pykka.ThreadingFuture[int] = pykka.ThreadingFuture()
    envelope = Envelope("hello", reply_to=future)
    assert (envelope.message, envelope.reply_to) == ("hello", future)
    assert Envelope("no answer").reply_to is None


def test_tell_and_stop_put_envelopes_and_the_stop_message_in_the_actors_inbox() -> None:
    class Quiet(pykka.ThreadingActor):
        pass

    seen: list[object] = []
    actor = Quiet()

    class Inbox:
        def put(self, envelope: object) -> None:
            seen.append(envelope)

    actor.actor_inbox = Inbox()  # type: ignore[assignment]
    ref = pykka.ActorRef(actor)
    ref.tell("ping")
    ref.stop(block=False)
    assert isinstance(seen[0], Envelope) and seen[0].message == "ping"
    assert isinstance(seen[1], Envelope) and isinstance(seen[1].message, ActorStop)


def test_pykkas_loop_runs_the_hook_the_cells_own_loop_replaces() -> None:
    loop = inspect.getsource(pykka.ThreadingActor._actor_loop)
    assert "self._actor_loop_running()" in loop
    assert "_actor_loop_running" in vars(OwnLoop)


def test_an_actor_with_its_own_loop_runs_it_between_start_and_stop() -> None:
    ran: list[str] = []

    class Once(OwnLoop):
        def on_start(self) -> None:
            ran.append("start")

        def run_loop(self) -> None:
            ran.append("loop")
            self.actor_stopped.set()

    ref = Once.start()
    try:
        assert ref.actor_stopped.wait(5)
        assert ran == ["start", "loop"]
    finally:
        pykka.ActorRegistry.unregister(ref)
