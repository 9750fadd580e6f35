"""The organization's templates, read statically where moto's CloudFormation cannot create them
(bus policies, queue policies, alarms, Application Auto Scaling): cfn-lint validates each against
the resource schemas, and these tests check that they point at the right things."""

from __future__ import annotations

from typing import Any

from cfnlint.decode import cfn_yaml

from tests.test_deploy import ROOT, run, tool

TEMPLATES = ROOT / "deploy" / "cloudformation"
#: what moto 5.2.5's CloudFormation skips ("not supported"), checked here instead
SKIPPED_BY_MOTO = {
    "AWS::SQS::QueuePolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::Events::EventBusPolicy",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
}


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATES / name))
    return loaded


def resources(name: str, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in load(name)["Resources"].items() if r["Type"] == kind}


def test_the_member_template_passes_cfn_lint() -> None:
    """cfn-lint checks every resource, the ones moto skips included, against AWS's schemas
    (ecswatch.yaml: tests/integration/test_cloudformation.py)."""
    result = run(tool("cfn-lint"), str((TEMPLATES / "member-account.yaml").relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_central_bus_admits_the_organization_or_listed_accounts_only() -> None:
    """PutEvents on the bus: by aws:PrincipalOrgID, or by account id; nothing else."""
    policies = resources("ecswatch.yaml", "AWS::Events::EventBusPolicy")
    org = policies["OrganizationBusPolicy"]
    assert org["Condition"] == "AdmitOrganization"
    statement = org["Properties"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    }
    accounts = policies["AccountsBusPolicy"]
    assert accounts["Condition"] == "AdmitAccounts"
    assert accounts["Properties"]["Statement"]["Principal"] == {"AWS": {"Ref": "MemberAccountIds"}}
    for policy in (org, accounts):
        bus = policy["Properties"]["EventBusName"]
        assert bus == {"Fn::If": ["CentralBus", {"Fn::GetAtt": ["EventBus", "Name"]}, "default"]}
    rule = load("ecswatch.yaml")["Resources"]["EcsEventsRule"]["Properties"]
    assert rule["EventBusName"] == bus


def test_undelivered_events_are_kept_and_the_queue_admits_only_the_rule() -> None:
    """RetryPolicy for a day, then the undelivered queue, which only our rule may write to."""
    for name, rule_id in (
        ("ecswatch.yaml", "EcsEventsRule"),
        ("member-account.yaml", "ForwardEcsEvents"),
    ):
        template = load(name)["Resources"]
        [target] = template[rule_id]["Properties"]["Targets"]
        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": 185,
            "MaximumEventAgeInSeconds": 86400,
        }
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["UndeliveredQueue", "Arn"]}
        policy = template["UndeliveredQueuePolicy"]["Properties"]
        assert policy["Queues"] == [{"Ref": "UndeliveredQueue"}]
        [statement] = policy["PolicyDocument"]["Statement"]
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}
        }


def test_every_alarm_pages_the_alarm_topic_and_one_watches_the_oldest_message() -> None:
    """AlarmTopicArn gets ALARM and OK; ApproximateAgeOfOldestMessage works while we are down."""
    alarms = resources("ecswatch.yaml", "AWS::CloudWatch::Alarm")
    assert {"DeadLetterQueueAlarm", "UndeliveredAlarm", "OldestMessageAlarm"} <= set(alarms)
    actions = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == actions
        assert alarm["Properties"]["OKActions"] == actions
    oldest = alarms["OldestMessageAlarm"]["Properties"]
    assert oldest["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert oldest["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}
    ]
    assert oldest["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}


def test_the_service_scales_on_visible_messages_per_running_task() -> None:
    """Target tracking between MinTasks and MaxTasks on queue depth ÷ running tasks."""
    target = resources("ecswatch.yaml", "AWS::ApplicationAutoScaling::ScalableTarget")[
        "ScalableTarget"
    ]["Properties"]
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    assert target["ResourceId"] == {"Fn::Sub": "service/${ClusterName}/${Service.Name}"}
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Ref": "MinTasks"},
        {"Ref": "MaxTasks"},
    )
    policy = resources("ecswatch.yaml", "AWS::ApplicationAutoScaling::ScalingPolicy")[
        "BacklogPerTaskScaling"
    ]["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == {"Ref": "BacklogPerTaskTarget"}
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    visible = metrics["visible"]["MetricStat"]["Metric"]
    assert visible["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert visible["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["EventsQueue", "QueueName"]}
    tasks = metrics["tasks"]["MetricStat"]["Metric"]
    assert tasks["MetricName"] == "RunningTaskCount"
    assert {d["Name"]: d["Value"] for d in tasks["Dimensions"]} == {
        "ClusterName": {"Ref": "ClusterName"},
        "ServiceName": {"Fn::GetAtt": ["Service", "Name"]},
    }
    [returned] = [m for m in metrics.values() if m["ReturnData"]]
    assert "visible / tasks" in returned["Expression"]


def test_the_task_can_run_on_graviton() -> None:
    """CpuArchitecture parameter: X86_64 (default) or ARM64."""
    template = load("ecswatch.yaml")
    assert template["Parameters"]["CpuArchitecture"]["AllowedValues"] == ["X86_64", "ARM64"]
    platform = template["Resources"]["TaskDefinition"]["Properties"]["RuntimePlatform"]
    assert platform["CpuArchitecture"] == {"Ref": "CpuArchitecture"}


def test_the_member_template_suits_a_stackset() -> None:
    """Nothing named (instances in many accounts and regions never collide), role scoped."""
    template = load("member-account.yaml")["Resources"]
    for resource in template.values():
        properties = resource.get("Properties", {})
        assert not {"RoleName", "QueueName", "Name"} & set(properties), resource["Type"]
    role = template["ForwardRole"]["Properties"]
    [statement] = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "events:PutEvents",
        {"Ref": "CentralEventBusArn"},
    )
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    [target] = template["ForwardEcsEvents"]["Properties"]["Targets"]
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    assert template["ForwardEcsEvents"]["Properties"]["EventPattern"] == {"source": ["aws.ecs"]}
