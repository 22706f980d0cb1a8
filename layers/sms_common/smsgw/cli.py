"""What the console scripts (`sms-publish`, `sms-status`, `sms-redrive`) share: where AWS is."""

from __future__ import annotations

import argparse
from typing import Any

import boto3


def aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="an AWS endpoint such as a local moto server")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")


def clients(args: argparse.Namespace, *services: str) -> tuple[Any, ...]:
    """One client per service, from one session, at the endpoint and region the options name."""
    session = boto3.session.Session(region_name=args.region)
    return tuple(session.client(service, endpoint_url=args.endpoint_url) for service in services)
