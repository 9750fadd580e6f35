"""The item serializer writes exactly what boto3's TypeSerializer would, and refuses the same."""

from __future__ import annotations

import decimal
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from ecswatch.daemon.state.dynamo import UnstorableEventError, serialize_item
from ecswatch.dev.simulate import generate
from ecswatch.domain.events import Event, build_item, parse_message

boto3_serialize = TypeSerializer().serialize
json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def reference(item: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return {k: boto3_serialize(v) for k, v in item.items()}
    except (TypeError, ValueError, decimal.DecimalException):
        return None


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_like, max_size=6))
def test_matches_boto3_type_serializer_or_refuses_like_it(item: dict[str, Any]) -> None:
    expected = reference(item)
    if expected is None:
        with pytest.raises(UnstorableEventError):
            serialize_item(item)
    else:
        assert serialize_item(item) == expected


def test_realistic_items_serialize_like_boto3() -> None:
    for body in generate(tasks=8, seed=5).bodies():
        event = parse_message(body)
        assert isinstance(event, Event)
        item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
        assert serialize_item(item) == reference(item)
    assert json.dumps(serialize_item({"f": decimal.Decimal("0.0")})) == '{"f": {"N": "0.0"}}'
