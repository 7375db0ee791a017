"""Schemathesis fuzzes the HTTP API from its own OpenAPI description, on a live server.

Every operation gets requests generated from `/openapi.json`, valid ones and
invalid ones, signed as Twilio signs them and carrying the dial-out key, so
they reach the handlers; Twilio's and Exotel's REST APIs are the fakes, so
`/dialout` places calls. No answer may be a 5xx or contradict the description
(status, content type, body, headers); invalid requests must be refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckFunction, GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from dialout.placers import EXOTEL_STATUS_PATH, exotel_status_token
from tests.conftest import TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.dialout_providers import AUTH, exotel_settings, twilio_settings
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio

# Examples per operation and mode: a dozen operations in well under a minute.
EXAMPLES = 25
TWILIO_SIGNED = {"/", "/status", "/transfer/dial-result"}
# A request the description allows may still be refused, 4xx, by rules it cannot state:
# Exotel's two parameters of 128 characters, Twilio's 4000 characters of TwiML, and
# the provider's own refusals (a number it rejects), all answered 422 or 403 as described;
# a transfer's target, a name from the server's configuration (or the call's own).
EXCLUDED: dict[str, list[CheckFunction]] = {
    "POST /dialout": [positive_data_acceptance],
    "POST /calls/{call_sid}/transfer": [positive_data_acceptance],
}


def credentials(case: Case, base_url: str, exotel_token: str) -> dict[str, str]:
    """What a real client sends: the dial-out key, Twilio's signature, Exotel's token.

    Returns:
        The headers to send (explicit, so Schemathesis can try the request without them).
    """
    # A case made without the key on purpose (negative mode) must be refused as it is.
    keyless = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    headers = {} if keyless else dict(AUTH)
    if case.operation.path == f"{EXOTEL_STATUS_PATH}/{{token}}":  # the token rides in the path
        case.path_parameters = {**(case.path_parameters or {}), "token": exotel_token}
    path = case.formatted_path
    if path in TWILIO_SIGNED:
        # Sign exactly what will be sent: the URL and the form as the server parses them.
        sent = requests.Request(**case.as_transport_kwargs(base_url=base_url)).prepare()
        body = sent.body.decode() if isinstance(sent.body, bytes) else str(sent.body or "")
        form = ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))
        validator = RequestValidator(TEST_AUTH_TOKEN)
        headers["X-Twilio-Signature"] = validator.compute_signature(sent.url, form)
    return headers


def test_every_answer_is_what_the_api_description_says(
    make_server: MakeServer, twilio: FakeTwilio, exotel: FakeExotel
) -> None:
    config = twilio_settings(twilio.base_url) | exotel_settings(exotel)
    server = make_server(**config)
    token = exotel_status_token(offline_settings(**config))
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: dict[str, Any] = {}
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:
        excluded = EXCLUDED.get(operation.label, [])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                # The same examples every run: a verdict CI can reproduce.
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def fuzz(case: Case) -> None:
                headers = credentials(case, server.url, token)
                case.call_and_validate(
                    base_url=server.url,
                    headers=headers,
                    excluded_checks=excluded,  # noqa: B023 (each fuzz runs in its own turn)
                    timeout=15,
                )

            try:
                fuzz()
            except Unsatisfiable:  # nothing to get wrong: no parameters, no body
                continue
            except (Exception, BaseExceptionGroup) as e:  # every operation failing, not the first
                failures[f"{operation.label} ({mode.value})"] = e
    assert not failures, "\n\n".join(f"{label}: {e}" for label, e in failures.items())
