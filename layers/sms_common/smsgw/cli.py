"""What the console scripts (`sms-publish`, `sms-status`, `sms-redrive`) share: where AWS is."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_T = TypeVar("_T")


class Failed(Exception):
    """A call to AWS failed; its one line is on stderr already."""


def aws_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="an AWS endpoint such as a local moto server")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")


def clients(args: argparse.Namespace, *services: str) -> tuple[Any, ...]:
    """One client per service, from one session, at the endpoint and region the options name."""
    session = boto3.session.Session(region_name=args.region)
    return tuple(session.client(service, endpoint_url=args.endpoint_url) for service in services)


def reported(action: str, call: Callable[[], _T]) -> _T:
    """`call`'s result; an AWS error (or a stack without the output named) is one line on stderr, then Failed."""
    try:
        return call()
    except (BotoCoreError, ClientError, LookupError) as exc:
        print(f"could not {action}: {exc}", file=sys.stderr)
        raise Failed from None
