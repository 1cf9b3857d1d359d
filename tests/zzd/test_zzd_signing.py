"""The signer reproduces the binding vectors of zzd-api.md §1 and formats timestamps and nonces."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from connectors.zzd.signing import (
    canonical_params,
    make_nonce,
    make_timestamp,
    param_pairs,
    signature,
    signed_headers,
    string_to_sign,
)

VECTOR_1_PARAMS = {"tenantId": "100001", "employeeCodes": ["GE_b", "GE_a"], "empty": ""}
VECTOR_2_PARAMS = {
    "tenantId": "196729", "employeeName": "张三", "govEmpCellPhoneNo": "13800000001",
    "organizationCode": "GO_0a1b2c", "operator": "syncd", "areaCode": "86", "empty": "",
}


def test_vector_1_string_to_sign_is_exact() -> None:
    text = string_to_sign("POST", "2024-01-02T10:20:30.123+08:00", "17041620301234567",
                          "/mozi/employee/listEmployeeAccountIds", param_pairs(VECTOR_1_PARAMS))
    assert text == (
        "POST\n2024-01-02T10:20:30.123+08:00\n17041620301234567\n/mozi/employee/listEmployeeAccountIds\n"
        "employeeCodes=GE_a&employeeCodes=GE_b&tenantId=100001"
    )


def test_vector_1_signature_is_exact() -> None:
    text = string_to_sign("POST", "2024-01-02T10:20:30.123+08:00", "17041620301234567",
                          "/mozi/employee/listEmployeeAccountIds", param_pairs(VECTOR_1_PARAMS))
    assert signature("test-secret", text) == "tGhLDo273vVdUp9Orij0EuyDWj16txPMoiGr8m09Jpc="


def test_vector_2_signature_is_exact() -> None:
    text = string_to_sign("POST", "2026-11-25T09:30:00.000+08:00", "17640343800001234",
                          "/addressBook/employee/createComplexEmployee", param_pairs(VECTOR_2_PARAMS))
    assert signature("s3cr3t-Key", text) == "oiyWNJVDp6a7CYFSVx0t4t9gjXpf4EuVxs7LxyiFjWE="


def test_keys_are_ordered_case_insensitively_and_values_of_a_repeated_key_ascending() -> None:
    pairs = [("b", "2"), ("A", "1"), ("c", "z"), ("c", "a")]
    assert canonical_params(pairs) == "A=1&b=2&c=a&c=z"


def test_empty_names_and_values_are_neither_signed_nor_sent() -> None:
    assert param_pairs({"a": "", "b": ["", "x"], "": "y", "c": []}) == [("b", "x")]


def test_string_to_sign_without_parameters_has_no_trailing_part() -> None:
    assert string_to_sign("post", "T", "N", "/p", []) == "POST\nT\nN\n/p"


def test_timestamp_has_milliseconds_and_the_china_offset() -> None:
    moment = datetime(2024, 1, 2, 2, 20, 30, 123456, tzinfo=UTC)
    assert make_timestamp(moment) == "2024-01-02T10:20:30.123+08:00"


def test_nonce_is_epoch_milliseconds_and_four_digits() -> None:
    nonce = make_nonce(1704162030123)
    assert re.fullmatch(r"1704162030123\d{4}", nonce)


def test_calls_in_the_same_millisecond_never_share_a_nonce() -> None:
    # Random digits collided about once in 10,000 pairs: the gateway then refused a call as NonceReused.
    nonces = [make_nonce(1704162030123) for _ in range(10_000)]
    assert len(set(nonces)) == 10_000


def test_signed_headers_sign_what_the_vector_rules_say() -> None:
    moment = datetime(2024, 1, 2, 2, 20, 30, 123000, tzinfo=UTC)
    pairs = param_pairs(VECTOR_1_PARAMS)
    headers = signed_headers("key", "test-secret", "POST", "/mozi/employee/listEmployeeAccountIds", pairs, now=moment)
    assert headers["apiKey"] == "key"
    assert headers["X-Hmac-Auth-Version"] == "1.0"
    assert headers["X-Hmac-Auth-Timestamp"] == "2024-01-02T10:20:30.123+08:00"
    assert headers["X-Hmac-Auth-Nonce"].startswith("1704162030123")
    expected = signature("test-secret", string_to_sign(
        "POST", headers["X-Hmac-Auth-Timestamp"], headers["X-Hmac-Auth-Nonce"],
        "/mozi/employee/listEmployeeAccountIds", pairs,
    ))
    assert headers["X-Hmac-Auth-Signature"] == expected
