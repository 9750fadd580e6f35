"""The item serializer writes exactly what boto3's TypeSerializer would, and refuses the same;
an item sent pre-encoded is the request botocore would have built."""

from __future__ import annotations

import decimal
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from ecswatch.config import AwsConfig
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.state.dynamo import UnstorableEventError, serialize_item
from ecswatch.daemon.state.encoded import encode_item, send_encoded_items
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


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_like, max_size=6))
def test_an_encoded_item_is_the_serialized_item_as_json_or_refused_alike(
    item: dict[str, Any],
) -> None:
    """The one-pass encoder writes what serialize_item builds, and refuses what it refuses."""
    try:
        expected = serialize_item(item)
    except UnstorableEventError:
        with pytest.raises(UnstorableEventError):
            encode_item(item)
        return
    assert json.loads(encode_item(item)) == expected


def test_realistic_items_serialize_like_boto3() -> None:
    for body in generate(tasks=8, seed=5).bodies():
        event = parse_message(body)
        assert isinstance(event, Event)
        item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
        assert serialize_item(item) == reference(item)
        assert json.loads(encode_item(item)) == reference(item)
    assert json.dumps(serialize_item({"f": decimal.Decimal("0.0")})) == '{"f": {"N": "0.0"}}'


def sent_bodies(client: Any) -> list[dict[str, Any]]:
    """Every request body `client` sends from now on, answered `{}` without a network."""
    bodies: list[dict[str, Any]] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        bodies.append(json.loads(request.body))
        return AWSResponse(request.url, 200, {}, RawBody(b"{}"))

    client.meta.events.register("before-send.dynamodb.PutItem", answer)
    return bodies


class RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def test_an_encoded_item_is_sent_as_botocore_would_send_the_item() -> None:
    """The store's pre-encoded Item reaches DynamoDB as the very request botocore builds."""
    client = make_client("dynamodb", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    send_encoded_items(client)
    bodies = sent_bodies(client)
    for body in generate(tasks=4, seed=9).bodies():
        event = parse_message(body)
        assert isinstance(event, Event)
        item = build_item(event, now=datetime.now(UTC), stopped_task_ttl_days=7)
        request = {"TableName": "t", "ConditionExpression": "attribute_not_exists(k)"}
        client.put_item(**request, Item=serialize_item(item))
        client.put_item(**request, Item=encode_item(item))
        assert bodies[-1] == bodies[-2]
        assert bodies[-1]["Item"] == serialize_item(item)


def test_an_encoded_item_alone_makes_a_well_formed_body() -> None:
    """Spliced into an otherwise empty request, the Item still makes one JSON object."""
    client = make_client("dynamodb", AwsConfig(region="us-east-1", endpoint_url="http://x:1"))
    send_encoded_items(client)
    bodies = sent_bodies(client)
    client.put_item(Item=encode_item({"k": "v"}))
    assert bodies == [{"Item": {"k": {"S": "v"}}}]
