"""Pages and opaque page tokens that remember which query they belong to."""

from __future__ import annotations

import base64
import json

import pytest

from driftline.core.paging import Page, decode_token, encode_token
from driftline.errors import InvalidArgumentError

QUERY = {"kind": "runs", "filter": "metrics.auc > 0.8", "max": 10}


def test_page_behaves_like_a_sequence_of_its_items() -> None:
    page = Page(["a", "b", "c"], next_token="t")
    assert list(page) == ["a", "b", "c"]
    assert len(page) == 3
    assert page[1] == "b"
    assert page.next_token == "t"
    assert Page([]).next_token is None


def test_no_token_means_the_first_page() -> None:
    assert decode_token(None, QUERY) == 0
    assert decode_token("", QUERY) == 0


@pytest.mark.parametrize("offset", [0, 1, 10, 123_456])
def test_a_token_round_trips_its_offset_for_the_same_query(offset: int) -> None:
    token = encode_token(offset, QUERY)
    assert decode_token(token, dict(QUERY)) == offset


def test_tokens_are_url_safe_text() -> None:
    token = encode_token(42, QUERY)
    assert token.isascii()
    assert not set(token) & set("+/= ")


def test_query_key_order_does_not_matter() -> None:
    token = encode_token(5, {"a": 1, "b": 2})
    assert decode_token(token, {"b": 2, "a": 1}) == 5


@pytest.mark.parametrize(
    "other",
    [
        {**QUERY, "filter": "metrics.auc > 0.9"},
        {**QUERY, "max": 11},
        {"kind": "experiments"},
    ],
)
def test_a_token_reused_with_a_different_query_is_refused(other: dict[str, object]) -> None:
    token = encode_token(10, QUERY)
    with pytest.raises(InvalidArgumentError, match="different query"):
        decode_token(token, other)


@pytest.mark.parametrize("token", ["not a token", "!!!!", "e30", "WzFd", "bnVsbA"])
def test_a_malformed_token_is_an_invalid_argument(token: str) -> None:
    # "e30" is {} , "WzFd" is [1], "bnVsbA" is null: valid base64 and JSON, wrong shape.
    with pytest.raises(InvalidArgumentError):
        decode_token(token, QUERY)


def test_a_forged_negative_offset_is_refused() -> None:
    good = json.loads(base64.urlsafe_b64decode(encode_token(3, QUERY) + "=="))
    forged = json.dumps({"o": -5, "q": good["q"]}).encode()
    token = base64.urlsafe_b64encode(forged).decode().rstrip("=")
    with pytest.raises(InvalidArgumentError):
        decode_token(token, QUERY)
