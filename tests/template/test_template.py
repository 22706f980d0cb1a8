"""template.yaml keeps the contract's names, least privilege, and the queue settings the send path relies on."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import ROOT

CONTRACT_VARIABLES = ["MESSAGES_TABLE", "MIMSMS_SECRET_ID", "MIMSMS_API", "MIMSMS_BASE_URL", "MIMSMS_RATE_LIMITS"]


def functions(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for function in functions(template).values():
        for policy in function["Properties"].get("Policies", []):
            if "Statement" in policy:
                found.extend(policy["Statement"])
    return found


def test_every_contract_variable_is_set(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for name in CONTRACT_VARIABLES:
        assert name in variables, name


def test_every_variable_the_package_reads_is_in_the_template(template: dict[str, Any]) -> None:
    from smsgw.config import declared

    # Settings reads exactly its declared variables (smsgw.config.read takes each declaration's name).
    read = {declaration.variable for declaration in declared().values()}
    variables = set(template["Globals"]["Function"]["Environment"]["Variables"])
    assert read <= variables, read - variables


def test_function_paths_follow_the_contract(template: dict[str, Any]) -> None:
    send = template["Resources"]["SendSmsFunction"]["Properties"]
    assert (send["CodeUri"], send["Handler"]) == ("functions/send_sms/", "app.lambda_handler")
    assert (ROOT / "functions/send_sms/app.py").exists()


def test_no_wildcard_actions_or_resources(template: dict[str, Any]) -> None:
    # In a key policy "*" is the key itself (the only form KMS takes); everywhere else it would be everything.
    others = {name: r for name, r in template["Resources"].items() if r["Type"] != "AWS::KMS::Key"}
    text = json.dumps(others)
    assert '"*"' not in text
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions)
        assert statement["Resource"] != "*"


def test_table_access_is_scoped_to_the_table(template: dict[str, Any]) -> None:
    dynamo = [s for s in statements(template) if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert dynamo
    for statement in dynamo:
        resource = json.dumps(statement["Resource"])
        assert "MessagesTable" in resource or resource == '{"Fn::GetAtt": ["ControlTable", "Arn"]}', statement
        if "dynamodb:Query" in statement["Action"]:
            assert statement["Resource"] == {"Fn::Sub": "${MessagesTable.Arn}/index/WorkIndex"}
        assert "dynamodb:Scan" not in statement["Action"]
        assert "dynamodb:DeleteItem" not in statement["Action"]


def test_gate_parameter_access_is_scoped_to_the_parameter(template: dict[str, Any]) -> None:
    ssm = [s for s in statements(template) if any(a.startswith("ssm:") for a in s["Action"])]
    assert len(ssm) == 2  # send_sms and poll_status
    for statement in ssm:
        assert set(statement["Action"]) == {"ssm:GetParameter", "ssm:PutParameter"}
        assert "${BalanceGateParameter}" in statement["Resource"]["Fn::Sub"]


def test_only_the_functions_that_call_mim_read_the_credentials_secret(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        secret_policies = [
            p for p in function["Properties"]["Policies"] if "AWSSecretsManagerGetSecretValuePolicy" in p
        ]
        expected = [{"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "CredentialsSecret"}}}]
        assert secret_policies == (expected if name != "StatusEventsFunction" else []), name


def test_only_the_stream_function_puts_status_events(template: dict[str, Any]) -> None:
    putters = [
        name
        for name, function in functions(template).items()
        if any("EventBridgePutEventsPolicy" in p for p in function["Properties"]["Policies"])
    ]
    assert putters == ["StatusEventsFunction"]
    stream = template["Resources"]["MessagesTable"]["Properties"]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}  # the filter compares the old status with the new
    source = template["Resources"]["StatusEventsStreamSource"]["Properties"]
    assert source["FunctionName"] == {"Ref": "StatusEventsFunction"}
    assert source["EventSourceArn"] == {"Fn::GetAtt": ["MessagesTable", "StreamArn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    # retried past a short EventBridge outage; what is left is kept (and alarmed), never dropped silently
    assert source["MaximumRetryAttempts"] == -1
    assert source["MaximumRecordAgeInSeconds"] >= 3600
    assert source["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StatusEventsFailureQueue", "Arn"]
    }
    alarm = template["Resources"]["StatusEventsFailedAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StatusEventsFailureQueue", "QueueName"]}


def test_alarms_can_publish_to_the_encrypted_alert_topic(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    key = resources["AlertTopic"]["Properties"]["KmsMasterKeyId"]
    assert key == {"Ref": "AlertTopicKey"}  # not alias/aws/sns, whose policy CloudWatch is not in
    statements = resources["AlertTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    assert all(a["AlarmActions"] == [{"Ref": "AlertTopic"}] for a in alarms)


def test_a_second_stack_in_the_account_gets_its_own_schedule(template: dict[str, Any]) -> None:
    schedule = template["Resources"]["PollStatusFunction"]["Properties"]["Events"]["PollSchedule"]["Properties"]
    assert schedule.get("OmitName") is True
    assert "Name" not in schedule


def test_metric_math_has_no_scalar_inside_an_array_function(template: dict[str, Any]) -> None:
    for resource in template["Resources"].values():
        for metric in resource.get("Properties", {}).get("Metrics", []) if resource["Type"].endswith("Alarm") else []:
            expression = metric.get("Expression", "")
            for array in re.findall(r"(?:MAX|MIN|SUM|AVG)\(\[([^\]]*)\]", expression):
                assert all(not re.fullmatch(r"\s*[0-9.]+\s*", part) for part in array.split(",")), expression


def table_indexes(template: dict[str, Any]) -> list[dict[str, Any]]:
    return list(template["Resources"]["MessagesTable"]["Properties"]["GlobalSecondaryIndexes"])


def test_work_index_is_sparse_and_ordered_by_due_time(template: dict[str, Any]) -> None:
    from smsgw.store import DUE, WORK, WORK_INDEX

    indexes = {
        i["IndexName"]: i for i in template["Resources"]["MessagesTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    index = indexes[WORK_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": WORK, "KeyType": "HASH"},
        {"AttributeName": DUE, "KeyType": "RANGE"},
    ]


def test_bulk_numbers_are_listed_by_their_request_from_a_keys_only_index(template: dict[str, Any]) -> None:
    from smsgw.store import PARENT, PARENT_INDEX

    indexes = {
        i["IndexName"]: i for i in template["Resources"]["MessagesTable"]["Properties"]["GlobalSecondaryIndexes"]
    }
    index = indexes[PARENT_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": PARENT, "KeyType": "HASH"},
        {"AttributeName": "request_id", "KeyType": "RANGE"},
    ]
    # Keys only: a number's record is written to the index once, not at every change of its status.
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_poll_status_runs_on_a_schedule_with_retries_and_a_dlq(template: dict[str, Any]) -> None:
    poll = template["Resources"]["PollStatusFunction"]["Properties"]
    assert (poll["CodeUri"], poll["Handler"]) == ("functions/poll_status/", "app.lambda_handler")
    assert (ROOT / "functions/poll_status/app.py").exists()
    schedule = poll["Events"]["PollSchedule"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == {"Ref": "PollSchedule"}
    assert schedule["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert schedule["Properties"]["DeadLetterConfig"] == {"Type": "SQS"}
    assert template["Parameters"]["PollSchedule"]["Default"] == "rate(1 minute)"
    # One run at a time, over before the next one (a minute at the shortest), never retried past it.
    assert poll["ReservedConcurrentExecutions"] == 1
    assert poll["Timeout"] < 60
    assert schedule["Properties"]["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 60
    assert poll["EventInvokeConfig"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


@pytest.mark.parametrize(
    "alarm", ["DeadLetterAlarm", "LowBalanceAlarm", "BalanceGateClosedAlarm", "FailureRateAlarm", "ProviderOutageAlarm"]
)
def test_alarms_notify_the_alert_topic(template: dict[str, Any], alarm: str) -> None:
    props = template["Resources"][alarm]["Properties"]
    assert props["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_every_function_queue_and_the_poller_is_watched(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = set()
    for props in alarms.values():
        for query in props.get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric", {})
            if metric.get("Namespace") == "AWS/Lambda":
                watched.add((metric["MetricName"], metric["Dimensions"][0]["Value"]["Ref"]))
    for function in functions(template):
        assert {("Errors", function), ("Throttles", function)} <= watched, function
    ages = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a.get("MetricName") == "ApproximateAgeOfOldestMessage"
    }
    assert ages == {"SendQueue", "PrioritySendQueue"}
    dead_letters = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms.values()
        if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    # the SQS dead-letter queue, the scheduler's (SAM names it after the schedule), the events' failure queue
    assert dead_letters == {"SendDeadLetterQueue", "PollStatusFunctionPollScheduleQueue", "StatusEventsFailureQueue"}
    missing = alarms["BalanceMissingAlarm"]
    assert (missing["MetricName"], missing["TreatMissingData"]) == ("Balance", "breaching")  # a dead poller
    assert missing["Period"] * missing["EvaluationPeriods"] > 240  # longer than the balance check's interval


def test_the_dashboard_shows_the_service_and_its_url_is_an_output(template: dict[str, Any]) -> None:
    body, names = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    shown = json.dumps(widgets) + body
    for metric in (
        "MessagesSent",
        "MessagesDelivered",
        "MessagesFailed",
        "Balance",
        "BalanceGateClosed",
        "MessagesHeld",
        "MessagesDeferred",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Duration",
    ):
        assert metric in shown, metric
    for function in functions(template):
        assert "${" + function + "}" in body
    assert names["Service"] == {"Fn::Sub": "sms-gateway-${Stage}"}
    assert "${Dashboard}" in template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_two_stages_in_one_account_do_not_share_metrics_alarms_or_events(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Fn::Sub": "sms-gateway-${Stage}"}
    assert variables["STATUS_EVENT_SOURCE"] == {"Fn::Sub": "sms-gateway-${Stage}"}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            text = json.dumps(resource["Properties"])
            assert '"service", "Value": "sms-gateway"' not in text.replace('"Name": ', "")


def test_alarm_metrics_are_ones_the_code_emits(template: dict[str, Any]) -> None:
    package = ROOT / "layers/sms_common/smsgw"
    source = "".join(f.read_text() for f in [*sorted((package / "sending").glob("*.py")), package / "polling.py"])
    for name in ("LowBalanceAlarm", "BalanceGateClosedAlarm"):
        metric = template["Resources"][name]["Properties"]["MetricName"]
        assert f'"{metric}"' in source, metric
    for query in template["Resources"]["FailureRateAlarm"]["Properties"]["Metrics"]:
        if "MetricStat" in query:
            assert f'"{query["MetricStat"]["Metric"]["MetricName"]}"' in source


def test_alert_email_is_optional(template: dict[str, Any]) -> None:
    assert template["Parameters"]["AlertEmail"]["Default"] == ""
    assert template["Resources"]["AlertEmailSubscription"]["Condition"] == "HasAlertEmail"


def test_queue_event_reports_partial_failures(template: dict[str, Any]) -> None:
    event = template["Resources"]["SendQueueEventSource"]
    assert event["Type"] == "AWS::Lambda::EventSourceMapping"
    props = event["Properties"]
    assert (props["FunctionName"], props["EventSourceArn"]) == (
        {"Ref": "SendSmsFunction"},
        {"Fn::GetAtt": ["SendQueue", "Arn"]},
    )
    assert props["BatchSize"] == 10
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["MaximumBatchingWindowInSeconds"] >= 1
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}


@pytest.mark.parametrize("queue_name", ["SendQueue", "PrioritySendQueue"])
def test_queue_visibility_and_dead_letters(template: dict[str, Any], queue_name: str) -> None:
    queue = template["Resources"][queue_name]["Properties"]
    timeout = template["Globals"]["Function"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SendDeadLetterQueue", "Arn"]}
    assert 3 <= queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    for name in (queue_name, "SendDeadLetterQueue"):
        assert template["Resources"][name]["Properties"]["SqsManagedSseEnabled"] is True


def test_otps_have_their_own_queue_and_event_source(template: dict[str, Any]) -> None:
    priority = template["Resources"]["PriorityQueueEventSource"]["Properties"]
    assert priority["FunctionName"] == {"Ref": "SendSmsFunction"}
    assert priority["EventSourceArn"] == {"Fn::GetAtt": ["PrioritySendQueue", "Arn"]}
    assert priority["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert priority["MaximumBatchingWindowInSeconds"] == 0  # an OTP does not wait for a batch to fill
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PRIORITY_QUEUE_URL"] == {"Ref": "PrioritySendQueue"}
    assert variables["OTP_RESERVED_SHARE"] == {"Ref": "OtpReservedShare"}


def test_event_sources_read_only_their_own_queues_and_stream(template: dict[str, Any]) -> None:
    """Declared as mappings of their own: SAM's SQS and DynamoDB events would attach the AWS-managed
    execution roles, which read and delete on every queue and stream of the account."""
    for function in functions(template).values():
        assert "Events" not in function["Properties"] or all(
            e["Type"] not in ("SQS", "DynamoDB", "Kinesis") for e in function["Properties"]["Events"].values()
        )
    policies = template["Resources"]["SendSmsFunction"]["Properties"]["Policies"]
    pollers = [p["SQSPollerPolicy"]["QueueName"] for p in policies if "SQSPollerPolicy" in p]
    assert pollers == [{"Fn::GetAtt": ["SendQueue", "QueueName"]}, {"Fn::GetAtt": ["PrioritySendQueue", "QueueName"]}]
    stream_reads = [s for s in statements(template) if "dynamodb:GetRecords" in s["Action"]]
    assert [s["Resource"] for s in stream_reads] == [{"Fn::GetAtt": ["MessagesTable", "StreamArn"]}]
    mappings = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 3
    assert all(m["DependsOn"].endswith("Role") for m in mappings)  # the permission exists before the check


def test_deferred_messages_can_go_back_to_both_queues(template: dict[str, Any]) -> None:
    policies = template["Resources"]["SendSmsFunction"]["Properties"]["Policies"]
    queues = [p["SQSSendMessagePolicy"]["QueueName"] for p in policies if "SQSSendMessagePolicy" in p]
    assert {"Fn::GetAtt": ["SendQueue", "QueueName"]} in queues
    assert {"Fn::GetAtt": ["PrioritySendQueue", "QueueName"]} in queues


def test_the_limiter_table_is_shared_by_both_functions(template: dict[str, Any]) -> None:
    props = template["Resources"]["ControlTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["CONTROL_TABLE"] == {"Ref": "ControlTable"}
    for function in ("SendSmsFunction", "PollStatusFunction"):
        statements = [
            s
            for p in template["Resources"][function]["Properties"]["Policies"]
            for s in p.get("Statement", [])
            if s["Resource"] == {"Fn::GetAtt": ["ControlTable", "Arn"]}
        ]
        assert statements, function
        assert set(statements[0]["Action"]) == {"dynamodb:GetItem", "dynamodb:PutItem"}


def test_table_is_durable(template: dict[str, Any]) -> None:
    table = template["Resources"]["MessagesTable"]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == [{"AttributeName": "request_id", "KeyType": "HASH"}]
    assert table["DeletionPolicy"] == "Retain"


def test_the_secret_is_a_placeholder_the_template_never_writes_again(template: dict[str, Any]) -> None:
    props = template["Resources"]["CredentialsSecret"]["Properties"]
    assert "SecretString" not in props  # a managed value is written back on every update that touches it
    generated = props["GenerateSecretString"]
    # Constant text: no parameter or reference can change it, so no stack update regenerates the secret.
    assert all(isinstance(value, (str, int, bool)) for value in generated.values())
    values = json.loads(generated["SecretStringTemplate"])
    assert values["username"] == values["api_key"] == "REPLACE_ME"
    assert values["password"] == values["sender_id"] == ""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DEFAULT_SENDER_ID"] == {"Ref": "SenderId"}  # the stack's default sender lives here


def test_every_function_has_a_log_group_with_retention(template: dict[str, Any]) -> None:
    for function in functions(template).values():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize(
    "output",
    [
        "SendQueueUrl",
        "SendQueueArn",
        "DeadLetterQueueUrl",
        "MessagesTableName",
        "CredentialsSecretArn",
        "SendSmsFunctionName",
        "DependenciesLayerArn",
        "CodeLayerArn",
        "PriorityQueueUrl",
        "ControlTableName",
    ],
)
def test_outputs_name_what_users_need(template: dict[str, Any], output: str) -> None:
    assert output in template["Outputs"]


def test_two_layers_the_code_apart_from_the_dependencies_and_no_boto3(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    runtime = template["Globals"]["Function"]["Runtime"]
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "DependenciesLayer"}, {"Ref": "CodeLayer"}]
    for name, folder in (("DependenciesLayer", "layers/dependencies/"), ("CodeLayer", "layers/sms_common/")):
        layer = resources[name]
        assert layer["Properties"]["ContentUri"] == folder
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        assert runtime in layer["Properties"]["CompatibleRuntimes"]
        makefile = (ROOT / folder / "Makefile").read_text()
        assert f"build-{name}:" in makefile
        assert "--invalidation-mode unchecked-hash" in makefile  # bytecode Lambda can use as it is
    assert (ROOT / "layers/sms_common/smsgw/__init__.py").exists()
    requirements = (ROOT / "layers/dependencies/requirements.txt").read_text().lower()
    assert "boto3" not in requirements.replace("ships boto3", "")
    assert "\nbotocore" not in requirements
    assert "--no-deps" in (ROOT / "layers/dependencies/Makefile").read_text()  # no botocore via aws-xray-sdk


def test_events_folder_is_valid_sqs_events() -> None:
    for path in (ROOT / "events").glob("send_sms*.json"):
        event = json.loads(path.read_text())
        assert event["Records"], path
        assert all(r["eventSource"] == "aws:sqs" and "body" in r for r in event["Records"]), path


def test_parameter_constraints_are_no_looser_than_the_functions_own_checks(template: dict[str, Any]) -> None:
    """A value the template accepts must not deploy and then fail every invocation on a ConfigError."""
    from smsgw.config import load_settings

    parameters = template["Parameters"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    base = {"MESSAGES_TABLE": "t", "MIMSMS_SECRET_ID": "s", "SEND_QUEUE_URL": "q", "CONTROL_TABLE": "c"}
    checked = 0
    for variable, value in variables.items():
        name = value.get("Ref") if isinstance(value, dict) else None
        if name not in parameters or parameters[name]["Type"] != "Number":
            continue
        for bound in ("MinValue", "MaxValue"):
            assert bound in parameters[name], f"{name} has no {bound}"
            load_settings({**base, variable: str(parameters[name][bound])})  # raises ConfigError if looser
            checked += 1
    assert checked >= 8
    url = re.compile(parameters["MimSmsBaseUrl"]["AllowedPattern"])
    assert url.fullmatch("https://api.mimsms.com")
    assert not url.fullmatch("http://api.mimsms.com")  # the code refuses plain http but for loopback
    assert not url.fullmatch("https://api.mimsms.com/?key=1")
    email = re.compile(parameters["AlertEmail"]["AllowedPattern"])
    assert email.fullmatch("")
    assert email.fullmatch("ops@example.com")
    assert not email.fullmatch("ops at example.com")
    sender = re.compile(parameters["SenderId"]["AllowedPattern"])
    assert not sender.fullmatch("A" * 21)


def test_make_build_finds_the_runtimes_python_on_path_first(template: dict[str, Any], tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    runtime = template["Globals"]["Function"]["Runtime"]
    assert f"RUNTIME_PYTHON := {runtime}" in (ROOT / "Makefile").read_text()
    (tmp_path / runtime).symlink_to(sys.executable)  # any interpreter that runs stands in for it here
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    found = subprocess.run(["make", "-s", "-n", "build"], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S607
    assert f'PATH="{tmp_path}:' in found.stdout
    if any(os.access(f"{d}/{runtime}", os.X_OK) for d in ("/usr/bin", "/bin")):
        return  # this machine has it system-wide: the message cannot be shown here
    env = {**os.environ, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "none")}
    missing = subprocess.run(["make", "-s", "build"], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S607
    assert missing.returncode != 0
    assert "neither on PATH nor in pyenv" in missing.stdout + missing.stderr


def _empty_list_test(rule_part: dict[str, Any]) -> str:
    (name,) = rule_part["Fn::EachMemberEquals"][0].values()
    return str(name)


def test_a_fixed_egress_ip_puts_only_the_functions_that_call_mim_in_the_vpc(template: dict[str, Any]) -> None:
    """MiM allow-lists caller IPs: with subnets given, send and poll leave through their NAT gateway."""
    condition = template["Conditions"]["HasEgressVpc"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "EgressSubnetIds"}]}, ""]}]}
    in_vpc = {}
    for name, function in functions(template).items():
        vpc = function["Properties"].get("VpcConfig")
        if vpc is not None:
            when, config, otherwise = vpc["Fn::If"]
            assert when == "HasEgressVpc"
            assert otherwise == {"Ref": "AWS::NoValue"}
            in_vpc[name] = config
    assert set(in_vpc) == {"SendSmsFunction", "PollStatusFunction"}
    for config in in_vpc.values():
        assert config == {
            "SubnetIds": {"Ref": "EgressSubnetIds"},
            "SecurityGroupIds": {"Ref": "EgressSecurityGroupIds"},
        }
    for parameter in ("EgressSubnetIds", "EgressSecurityGroupIds"):
        assert template["Parameters"][parameter] == {**template["Parameters"][parameter], "Default": ""}
    # Half a VPC config would deploy and then fail every call: a rule refuses it before anything is made.
    either, both = template["Rules"]["EgressGivenWhole"]["Assertions"][0]["Assert"]["Fn::Or"]
    assert {_empty_list_test(part) for part in either["Fn::And"]} == {"EgressSubnetIds", "EgressSecurityGroupIds"}
    assert {_empty_list_test(part["Fn::Not"][0]) for part in both["Fn::And"]} == {
        "EgressSubnetIds",
        "EgressSecurityGroupIds",
    }
