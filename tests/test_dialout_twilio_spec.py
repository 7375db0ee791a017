"""The request that places a call, checked against Twilio's published OpenAPI description
of its Calls API (in ../shared; skipped where it is not)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_ACCOUNT_SID, MakeServer
from tests.dialout_providers import CALLEE, OUR_NUMBER, TwilioDialout
from tests.fake_rest import RecordedRequest
from tests.fake_twilio import CALLS_PATH, FakeTwilio

SPEC = Path(__file__).resolve().parents[2] / "shared" / "twilio-openapi" / "twilio_api_v2010.json"


def check_create_call(spec: dict[str, Any], sent: RecordedRequest) -> list[str]:
    """What is wrong with `sent` as a `CreateCall` request, per Twilio's OpenAPI spec."""
    problems: list[str] = []
    path = "/2010-04-01/Accounts/{AccountSid}/Calls.json"
    operation = spec["paths"][path]["post"]
    template = re.escape(path).replace(re.escape("{AccountSid}"), "(?P<AccountSid>[^/]+)")
    match = re.fullmatch(template, sent.path)
    if sent.method != "POST" or match is None:
        return [f"{sent.method} {sent.path} is not {path}"]
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            value, schema = match[parameter["name"]], parameter["schema"]
            if not re.fullmatch(schema["pattern"], value) or len(value) != schema["maxLength"]:
                problems.append(f"path {parameter['name']}={value!r} breaks {schema}")
    schemes = spec["components"]["securitySchemes"]
    [requirement] = operation["security"]
    [scheme] = [schemes[name] for name in requirement]
    if (scheme["type"], scheme["scheme"]) != ("http", "basic") or not sent.auth_ok:
        problems.append("not authenticated with the account's Basic credentials")
    content = operation["requestBody"]["content"]
    if list(content) != ["application/x-www-form-urlencoded"] or not sent.form:
        problems.append("the body is not form-encoded")  # the fake parses only form bodies
    schema = content["application/x-www-form-urlencoded"]["schema"]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    names = [name for name, _ in sent.form]
    problems += [
        f"required field {name} missing" for name in schema["required"] if name not in names
    ]
    for name in dict.fromkeys(names):
        if name not in properties:
            problems.append(f"unknown field {name}")
            continue
        values = sent.values(name)
        field = properties[name]
        if field["type"] == "array":
            field = field["items"]
        elif len(values) > 1:
            problems.append(f"{name} repeated but not an array")
        for value in values:
            problems += [f"{name}={value!r}: {p}" for p in check_value(field, value)]
    instructions = [name for name in ("Twiml", "Url", "ApplicationSid") if name in names]
    if instructions not in (["Twiml"], ["Url"]):
        problems.append(f"needs exactly one of Twiml or Url, has {instructions}")
    return problems


def check_value(schema: dict[str, Any], value: str) -> list[str]:
    kind, fmt = schema["type"], schema.get("format")
    if kind == "integer" and not re.fullmatch(r"-?[0-9]+", value):
        return ["not an integer"]
    if kind == "boolean" and value not in ("true", "false"):
        return ["not a boolean"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"not one of {schema['enum']}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"does not match {schema['pattern']}"]
    if fmt == "uri" and not (
        urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc
    ):
        return ["not an absolute http(s) URI"]
    if fmt == "endpoint" and not re.fullmatch(r"\+[1-9][0-9]{1,14}|client:\S+|sip:\S+", value):
        return ["not a phone number, client: or sip: address"]
    if fmt == "twiml":
        if len(value) > 4000:
            return ["TwiML over 4,000 characters"]
        try:
            ElementTree.fromstring(value)
        except ElementTree.ParseError as e:
            return [f"TwiML is not XML: {e}"]
    return []


@pytest.fixture(scope="module")
def twilio_spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC} (it lives in ../shared)")
    return json.loads(SPEC.read_text())  # type: ignore[no-any-return]


def test_the_spec_check_catches_what_twilio_would_refuse(twilio_spec: dict[str, Any]) -> None:
    path = f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Calls.json"
    good = [("To", CALLEE), ("From", OUR_NUMBER), ("Twiml", "<Response/>")]
    assert check_create_call(twilio_spec, RecordedRequest("POST", path, good, True, 201)) == []
    for form, auth_ok in [
        (good[:1] + good[2:], True),  # no From
        ([*good, ("Url", "https://example.com/x")], True),  # both Twiml and Url
        ([*good, ("Colour", "blue")], True),
        ([*good, ("Timeout", "soon")], True),
        ([*good, ("To", "+15550000000")], True),
        ([*good, ("StatusCallbackMethod", "PUT")], True),
        (good, False),
    ]:
        recorded = RecordedRequest("POST", path, form, auth_ok, 201)
        assert check_create_call(twilio_spec, recorded), form


async def test_the_rest_request_conforms_to_twilios_openapi_description(
    make_server: MakeServer, twilio: FakeTwilio, twilio_spec: dict[str, Any]
) -> None:
    dialout = TwilioDialout(twilio)
    server = dialout.server(make_server, public_url="https://bot.example.com")
    for body in (
        {"to": CALLEE},
        {
            "to": CALLEE,
            "from": "+15550009999",
            "parameters": {"customer_id": "42", "campaign": "spring <sale> & more"},
            "machine_detection": "DetectMessageEnd",
            "timeout": 30,
            "time_limit": 900,
            "record": False,
        },
    ):
        status, _, answer = await dialout.dial(server, body)
        assert status == 201, answer
    sent = [r for r in twilio.requests if CALLS_PATH.match(r.path)]
    assert len(sent) == 2
    for recorded in sent:
        assert check_create_call(twilio_spec, recorded) == []
