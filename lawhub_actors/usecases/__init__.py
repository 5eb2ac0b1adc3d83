"""The application's use cases: what the gateway does, called alike by web
handlers and actors.

Each is a plain function, most of them of a store transaction (:class:`Tx`),
so the caller decides which transaction it joins — an automatic reply is
admitted in the transaction of the message it answers. They combine the
pure rules of :mod:`lawhub_actors.core` with the store; they know nothing
of HTTP or of actors.

- :mod:`.sends` — admit a send (a lawyer's, an automatic reply, a replay).
- :mod:`.dead_letters` — dead-letter a send; replay or discard one.
- :mod:`.consent` — change a customer's consent (keyword, Meta, a lawyer).
- :mod:`.auto_replies` — the replies a message calls for, admitted as sends.
- :mod:`.retirement` — retire what left the config once its work is done.
- :mod:`.operator_audit` — audit operators' config changes and rehearsed failures.
"""
