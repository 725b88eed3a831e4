"""A CRM bridge: ended queue calls (Enreach) and closed work items (Buzzeasy) become call
activities in a CRM's REST API, once each, however often an event is retried.

`receiver.toml` binds `EnreachCrmBridge` and `BuzzeasyCrmBridge` to their endpoints;
`python -m examples.crm_bridge` runs it all on this machine against a stand-in CRM.
"""

from .bridge import BuzzeasyCrmBridge, EnreachCrmBridge
from .crm import CrmClient, idempotency_key

__all__ = ["BuzzeasyCrmBridge", "CrmClient", "EnreachCrmBridge", "idempotency_key"]
