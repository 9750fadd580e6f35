"""The one ARN parser: cluster names, and the account/region labels kept bounded."""

from __future__ import annotations

import pytest

from ecswatch.domain.arns import account_region

TASK = "arn:aws:ecs:eu-west-1:111111111111:task/prod/0a1b2c"


@pytest.mark.parametrize(
    ("arn", "envelope", "expected"),
    [
        (TASK, None, ("111111111111", "eu-west-1")),
        ("arn:aws-us-gov:ecs:us-gov-west-1:222222222222:service/prod/web", None,
         ("222222222222", "us-gov-west-1")),
        ("arn:aws-cn:ecs:cn-north-1:333333333333:container-instance/c/1", None,
         ("333333333333", "cn-north-1")),
        # The ARN wins over the envelope; the envelope fills only what the ARN lacks.
        (TASK, {"account": "999999999999", "region": "ap-south-1"}, ("111111111111", "eu-west-1")),
        ("0a1b2c", {"account": "444444444444", "region": "sa-east-1"},
         ("444444444444", "sa-east-1")),
        ("arn:aws:ecs:::task/0a1b2c", {"account": "444444444444"}, ("444444444444", "")),
    ],
)  # fmt: skip
def test_account_and_region_come_from_the_arn_else_the_envelope(
    arn: str, envelope: dict[str, str] | None, expected: tuple[str, str]
) -> None:
    """Old-style ARNs, GovCloud and China partitions parse; the envelope only fills gaps."""
    assert account_region(arn, envelope) == expected


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:eu-west-1:1:task/prod/x",  # not 12 digits
        "arn:aws:ecs:" + "x" * 300 + ":111111111111:task/a",
        "arn:aws:ecs:EU-WEST-1:11111111111a:task/a",
        None,
        12,
        "",
    ],
)
def test_malformed_values_become_empty_labels_never_echoed_input(arn: object) -> None:
    """Hostile input cannot mint label values: only well-formed ids pass."""
    account, region = account_region(arn, {"account": "<script>", "region": "x" * 100})
    assert account in ("", "111111111111")
    assert region in ("", "eu-west-1")
