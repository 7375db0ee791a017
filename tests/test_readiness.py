"""`/readyz` says ready for every configuration that works, and names what does not."""

from __future__ import annotations

from tests.conftest import TEST_AUTH_TOKEN, MakeServer
from tests.dialout_providers import AUTH, CALLEE, exotel_settings, http, twilio_settings
from tests.fake_exotel import FakeExotel
from tests.fake_twilio import FakeTwilio
from tests.ops_helpers import readiness
from tests.postgres import PostgresServer
from tests.records_helpers import refuse_connections


async def test_exotel_only_dialout_is_ready(make_server: MakeServer, exotel: FakeExotel) -> None:
    server = make_server(**exotel_settings(exotel))
    status, body = await readiness(server.url)
    assert (status, body["status"]) == (200, "ready"), body


async def test_twilio_dialout_without_a_default_caller_id_is_ready_and_dials(
    make_server: MakeServer, twilio: FakeTwilio
) -> None:
    server = make_server(**twilio_settings(twilio.base_url, twilio_phone_number=None))
    status, body = await readiness(server.url)
    assert (status, body["status"]) == (200, "ready"), body

    # The caller id comes with the request instead.
    answer = await http(
        "POST",
        f"{server.url}/dialout",
        json_body={"to": CALLEE, "from": "+15550002222"},
        headers=AUTH,
    )
    assert answer[0] == 201, answer
    [placed] = twilio.calls_created()
    assert placed.value("From") == "+15550002222"


async def test_exotel_dialout_whose_streams_would_be_refused_is_not_ready(
    make_server: MakeServer, exotel: FakeExotel
) -> None:
    # Twilio's signatures are checked and Exotel has no credentials of its own: the
    # streams of the calls it places would be refused at /ws.
    server = make_server(
        **exotel_settings(exotel, exotel_ws_username=None, exotel_ws_password=None),
        twilio_auth_token=TEST_AUTH_TOKEN,
    )
    status, body = await readiness(server.url)
    assert status == 503
    assert "EXOTEL_WS_USERNAME" in body["reasons"]["configuration"], body


async def test_readiness_follows_the_database(
    make_server: MakeServer, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    server = make_server(database_url=url)
    assert (await readiness(server.url))[0] == 200

    await refuse_connections(url, refuse=True)
    try:
        status, body = await readiness(server.url)
        assert status == 503
        assert "not currently accepting connections" in body["reasons"]["database"], body
        assert set(body["reasons"]) == {"database"}
    finally:
        await refuse_connections(url, refuse=False)
    assert (await readiness(server.url))[0] == 200
