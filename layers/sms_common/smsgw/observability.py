"""The one Logger, Tracer and Metrics of the service, and the masking rules for what they may see.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE
(set in template.yaml); the defaults keep tests and local runs quiet and consistent.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from smsgw.phone import mask as mask_phone

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "sms-gateway")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SmsGateway"), service=SERVICE)

__all__ = ["logger", "mask_phone", "metrics", "tracer"]
