"""The status table (docs/contract.md, "The status record"): the only module that touches it (the limiter
has the control table).

The status record is also the idempotency record. `claim` is one conditional write that either
creates the record as `sending` or takes back a record whose previous attempt certainly did not reach
the provider (`attempt_state` released or held). Anything else is a duplicate and is not sent again.
Every later write is conditional on the claim token, so a record only ever moves forward. Every change
but the record of an invalid request (a conditional put) goes through one primitive, `_transition`.

Internal attributes (not part of the contract): `attempt_state` (in_flight, released, held, maybe_sent,
done), `claim_token`, `lease_until` (epoch seconds after which an in-flight claim is known to be
abandoned), `sqs_message_id`, `updated_at`, `expires_at` (the TTL attribute), `poll_work` and `due_at` (the
work queue below), `payload` (a held message's SQS body), `report_checks`.
"""

from smsgw.store.base import DUE, PARENT, PARENT_INDEX, TTL_ATTRIBUTE, WORK, WORK_INDEX, Claim, iso
from smsgw.store.cancel import MessageStore
from smsgw.transitions import BULK

__all__ = [
    "BULK",
    "DUE",
    "PARENT",
    "PARENT_INDEX",
    "TTL_ATTRIBUTE",
    "WORK",
    "WORK_INDEX",
    "Claim",
    "MessageStore",
    "iso",
]
