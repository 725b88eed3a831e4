"""A CRM bridge with a bug, for the walkthrough in docs/operating.md.

It files each answered queue call under the caller's country, and finds the country by the
first four characters of the number: right for +358 (Finland), wrong for +46 (Sweden), whose
calls fail with a KeyError until the lookup is fixed.
"""

from __future__ import annotations

import logging

from handlers import EnreachHandler
from handlers.enreach import QueueCallInUserConnected

log = logging.getLogger("filing")

COUNTRIES = {"+358": "FI", "+46": "SE", "+47": "NO"}


def country_of(number: str) -> str:
    """The country code of an E.164 number."""
    return COUNTRIES[number[:4]]


class Filing(EnreachHandler):
    """Logs each answered call with the caller's country (a CRM call in a real bridge)."""

    async def on_queue_call_in_user_connected(self, event: QueueCallInUserConnected) -> None:
        """File the answered call under the caller's country."""
        number = event.caller_number or ""
        log.info("call from %s (%s) answered by %s", number, country_of(number), event.user_name)
