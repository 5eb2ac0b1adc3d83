"""PII masking for the classifier's input (pure).

The AI classifier (and anything else outside the trust boundary) only ever
sees :class:`MaskedText`, and the only way to make one is :func:`mask`.
A classifier typed to take ``MaskedText`` therefore cannot be handed raw
customer text.

Rules, in the order they run, each in a module of its own:

1. Normalise (:mod:`~lawhub_actors.core.masking.text`): drop invisible
   format characters (zero-width spaces, …), then NFKC (full-width digits
   and at signs become ASCII).
2. Emails → ``[EMAIL]`` (:mod:`~lawhub_actors.core.masking.emails`). First,
   because an address can hold a phone number.
3. The sender's profile names (``names``) → ``[NAME]``
   (:mod:`~lawhub_actors.core.masking.names`).
4. Numbers → ``[NIK]``, ``[NPWP]``, ``[PHONE]`` or ``[ACCOUNT]``, by their
   shape and the words around them (:mod:`~lawhub_actors.core.masking.numbers`).

:mod:`~lawhub_actors.core.masking.kinds` holds the kinds and their
placeholders; :mod:`~lawhub_actors.core.masking.masked` the result type and
:func:`mask`, which chains the rules. Placeholders are never masked again,
so ``mask`` is idempotent: ``mask(mask(t).text).text == mask(t).text``.
"""

from lawhub_actors.core.masking.kinds import PiiKind
from lawhub_actors.core.masking.masked import MaskedText, mask
from lawhub_actors.core.masking.numbers import is_nik

__all__ = ["MaskedText", "PiiKind", "is_nik", "mask"]
