"""The send path: one SQS record in, one provider call at most, one status record out.

One room per concern: `inbound` (a record parsed once), `admission` (capacity for a batch),
`record` (outcomes written to the status record), `calls` (the provider call), `bulk` (bulk requests
and their chunks), `sender` (one record's whole life), `batch` (a batch on the send pool), `results`
(what became of a record, and its metrics).
"""

from smsgw.sending.batch import BatchRunner
from smsgw.sending.bulk import CALLS_PER_CHUNK
from smsgw.sending.inbound import Inbound
from smsgw.sending.results import RecordResult, RetryLater
from smsgw.sending.sender import Sender

__all__ = ["CALLS_PER_CHUNK", "BatchRunner", "Inbound", "RecordResult", "RetryLater", "Sender"]
