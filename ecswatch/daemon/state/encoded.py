"""The event's item as the JSON text of DynamoDB's wire format, and the botocore hooks that send
that text as the request's Item instead of serializing the item again."""

from __future__ import annotations

import decimal
import json
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT

from ecswatch.daemon.state.dynamo import serialize_item

#: one compact encoder, built once (json.dumps with separators builds one per call)
_compact = json.JSONEncoder(separators=(",", ":")).encode


class EncodedItem(str):
    """An item already in DynamoDB's JSON wire format, as text: see `send_encoded_items`."""


def encode_item(item: Mapping[str, Any]) -> EncodedItem:
    """`serialize_item(item)` as JSON text (UnstorableEventError for what it refuses).

    Written in one pass over the types JSON yields: json.dumps of serialize_item's nested dicts
    cost ~40 µs an event (a hundred small dicts, each checked for cycles), this ~10 µs. Anything
    the pass does not know, or refuses, goes through serialize_item, which decides as always.
    """
    out: list[str] = []
    try:
        _map(item, out)
    except (TypeError, ValueError, decimal.DecimalException, RecursionError):
        return EncodedItem(_compact(serialize_item(item)))
    return EncodedItem("".join(out))


def _map(value: Mapping[str, Any], out: list[str]) -> None:
    out.append("{")
    first = True
    for name, inner in value.items():
        if type(name) is not str:
            raise TypeError("attribute names are strings")
        if not first:
            out.append(",")
        first = False
        out += (_quote(name), ":")
        _attribute(inner, out)
    out.append("}")


def _attribute(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out += ('{"S":', _quote(value), "}")
    elif kind is dict:
        out.append('{"M":')
        _map(value, out)
        out.append("}")
    elif kind is int or kind is decimal.Decimal:
        # DynamoDB numbers: 38 significant digits; the context traps anything it would round.
        out += ('{"N":"', str(DYNAMODB_CONTEXT.create_decimal(value)), '"}')
    elif kind is bool:
        out.append('{"BOOL":true}' if value else '{"BOOL":false}')
    elif kind is list:
        out.append('{"L":[')
        for i, inner in enumerate(value):
            if i:
                out.append(",")
            _attribute(inner, out)
        out.append("]}")
    elif value is None:
        out.append('{"NULL":true}')
    else:
        raise TypeError(f"unsupported type {kind.__name__}")


def send_encoded_items(client: Any) -> None:
    """Lets `client.put_item(Item=EncodedItem(...))` send that text as the request's Item.

    botocore serializes a request by walking the operation's shapes, value by value: for an
    event's item (~1.5 KB, a hundred attribute values) ~5 % of the daemon's CPU, to produce the
    JSON we already had. Two of botocore's own hooks take the encoded Item out of the parameters
    before serialization and put it into the serialized body before signing (as botocore's own
    before-call handlers edit bodies). Any other Item (a dict) is serialized by botocore as usual.
    """
    client.meta.events.register(
        "before-parameter-build.dynamodb.PutItem", _take_encoded, unique_id="ecswatch-take-item"
    )
    client.meta.events.register(
        "before-call.dynamodb.PutItem", _splice_encoded, unique_id="ecswatch-splice-item"
    )


def _take_encoded(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if isinstance(params.get("Item"), EncodedItem):
        context["ecswatch_item"] = params["Item"]
        # An empty map in its place: a client that validates parameters (the default outside
        # make_client) still finds the required Item, and the body has one `"Item": {}` to fill
        # (botocore's json.dumps, default separators).
        params["Item"] = {}


#: the placeholder `_take_encoded` leaves, as botocore's json.dumps writes it
_EMPTY_ITEM = b'"Item": {}'


def _splice_encoded(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    item = context.get("ecswatch_item")
    if item is None:
        return
    body: bytes = params["body"]
    # The only top-level "Item" (quotes inside string values are escaped). The empty placeholder
    # is never sent: a botocore that wrote it differently fails the call loudly instead.
    if _EMPTY_ITEM not in body:
        raise RuntimeError("botocore's PutItem body has no empty Item to fill")
    params["body"] = body.replace(_EMPTY_ITEM, b'"Item": ' + item.encode(), 1)
