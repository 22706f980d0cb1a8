"""The template as CloudFormation receives it (SAM's transform applied): nothing a second stack would clash on."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest
from conftest import ROOT

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSLATE = """
import json, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
text = open(sys.argv[1]).read()
text = re.sub(r"(CodeUri|ContentUri): \\S+", r"\\1: s3://bucket/key", text)  # as `sam package` leaves them
class NoManagedPolicies:
    def load(self):
        return {}
print(json.dumps(transform(yaml_parse(text), {}, NoManagedPolicies())))
"""
# Properties that name a thing this stack creates: a literal value would be the same in every stack.
NAMING = re.compile(
    r"^(Name|FunctionName|LayerName|LogGroupName|DashboardName|RoleName|QueueName|TableName|"
    r"TopicName|AlarmName|ScheduleGroupName|AliasName|StateMachineName|RuleName)$"
)


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM CLI's virtualenv is not installed (make lint installs it)")
    env = {**os.environ, "AWS_DEFAULT_REGION": "ap-southeast-1"}
    result = subprocess.run(  # noqa: S603 - SAM's own translator on our template
        [str(SAM_PYTHON), "-c", TRANSLATE, str(ROOT / "template.yaml")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


def test_no_resource_has_a_name_fixed_across_stacks(translated: dict[str, Any]) -> None:
    fixed = []
    for name, resource in translated["Resources"].items():
        for key, value in resource.get("Properties", {}).items():
            if not NAMING.match(key) or resource["Type"] == "AWS::Lambda::EventSourceMapping":
                continue
            text = json.dumps(value)
            if isinstance(value, str) or ("AWS::StackName" not in text and '"Ref"' not in text):
                fixed.append((name, key, value))
    assert fixed == []


def test_no_function_role_gets_an_account_wide_managed_policy(translated: dict[str, Any]) -> None:
    for name, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            managed = json.dumps(resource["Properties"].get("ManagedPolicyArns", []))
            for broad in ("SQSQueueExecutionRole", "DynamoDBExecutionRole", "KinesisExecutionRole"):
                assert broad not in managed, (name, broad)


def test_every_alarm_action_is_a_topic_cloudwatch_may_publish_to(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for action in resource["Properties"]["AlarmActions"]:
            topic = resources[action["Ref"]]["Properties"]
            key = resources[topic["KmsMasterKeyId"]["Ref"]]["Properties"]["KeyPolicy"]["Statement"]
            assert any(s["Principal"].get("Service") == "cloudwatch.amazonaws.com" for s in key), name


def _queues_sent_to(role: dict[str, Any]) -> set[str]:
    """Logical ids of the queues a role's policies allow sqs:SendMessage on."""
    queues = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith("sqs:SendMessage") for action in actions):
                queues.update(re.findall(r'"Fn::GetAtt": \["(\w+)", "QueueName"\]', json.dumps(statement)))
    return queues


def test_a_function_that_publishes_to_its_own_queue_is_not_stopped_as_a_loop(translated: dict[str, Any]) -> None:
    # A waiting message goes back to the queue its function consumes; Lambda's loop detection would stop
    # the chain after ~16 hops and dead-letter the tail of a long campaign.
    resources = translated["Resources"]
    looping = set()
    for mapping in resources.values():
        if mapping["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        function = mapping["Properties"]["FunctionName"]["Ref"]
        role = resources[resources[function]["Properties"]["Role"]["Fn::GetAtt"][0]]
        source = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        if source in _queues_sent_to(role):
            looping.add(function)
    assert looping == {"SendSmsFunction"}
    for function in looping:
        assert resources[function]["Properties"].get("RecursiveLoop") == "Allow", function
