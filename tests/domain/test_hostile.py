"""Hostile input never crashes the parser and always gets an outcome (pure; thousands of bodies)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecswatch.daemon.state.dynamo import UnstorableEventError, serialize_item
from ecswatch.domain.events import Event, Ignored, Invalid, build_item, parse_message
from tests.domain.test_events import NOW

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)

envelopes = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["aws.ecs", "aws.ec2", "", "AWS.ECS"]) | json_values,
        "detail-type": st.sampled_from(
            ["ECS Task State Change", "ECS Container Instance State Change", "ECS Service Action"]
        )
        | json_values,
        "detail": st.fixed_dictionaries(
            {},
            optional={
                "taskArn": st.text(max_size=30) | json_values,
                "containerInstanceArn": st.text(max_size=30) | json_values,
                "version": st.integers(min_value=-5, max_value=10**40) | json_values,
                "lastStatus": st.sampled_from(["PENDING", "RUNNING", "STOPPED"]) | json_values,
                "startedAt": json_values,
                "overrides": json_values,
                "extra": json_values,
            },
        )
        | json_values,
    },
    optional={"id": json_values, "time": json_values, "account": json_values},
)


def outcome_of(body: str) -> str:
    parsed = parse_message(body)
    if isinstance(parsed, Event):
        # What would be written must serialize for DynamoDB, or be refused as unstorable.
        try:
            serialize_item(build_item(parsed, now=NOW, stopped_task_ttl_days=7))
        except UnstorableEventError:
            return "unstorable"
        return "event"
    assert isinstance(parsed, Ignored | Invalid)
    return type(parsed).__name__


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_an_outcome(body: str) -> None:
    assert outcome_of(body) in ("event", "unstorable", "Ignored", "Invalid")


# 1,500 envelopes in three independent shards of 500, so xdist runs them side by side.
@pytest.mark.parametrize("shard", range(3))
@settings(max_examples=500, deadline=None)
@given(envelopes)
def test_any_envelope_shape_gets_an_outcome(shard: int, envelope: dict[str, Any]) -> None:
    assert outcome_of(json.dumps(envelope)) in ("event", "unstorable", "Ignored", "Invalid")


def test_deep_nesting_is_invalid_not_a_crash() -> None:
    body = '{"source": "aws.ecs", "detail": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert isinstance(parse_message(body), Invalid)


def test_nesting_too_deep_to_serialize_is_unstorable_not_a_crash() -> None:
    # Parses (below the JSON recursion limit) but DynamoDB's serializer would recurse too deep.
    detail = '{"taskArn": "a", "version": 1, "x": ' + "[" * 600 + "]" * 600 + "}"
    body = '{"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": ' + detail + "}"
    assert outcome_of(body) == "unstorable"
