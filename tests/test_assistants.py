"""Assistants: a file names them, numbers reach them, dial-out picks one, a change is picked up.

The file's mistakes are found at start-up, each with its line.
"""

from __future__ import annotations

import asyncio
import re
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assistants.loading import AssistantsFileError, load
from simulator import SimulatedCall, parse_twiml, synthesize
from tests.conftest import OWN_URL, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, MakeServer, offline_settings
from tests.fake_twilio import FakeTwilio
from tests.records_helpers import reading, record_when
from tests.server_process import ServerProcess
from tests.webhook_servers import SECRET

KEY = "assistants-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
BAKERY, GARAGE = "+15551110000", "+15552220000"

TWO_ASSISTANTS = f"""\
prompts:
  bakery: You are the bakery's phone line.
assistants:
  bakery:
    numbers: ["{BAKERY}"]
    default: true
    system_prompt: {{prompt: bakery}}
    greeting: Welcome to the bakery. What would you like?
  garage:
    numbers: ["{GARAGE}"]
    greeting: You have reached the garage. Is your car broken?
    vad_stop_secs: 0.3
    transfer_targets: {{mechanic: "+15553330000"}}
    recording: "on"
"""


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def write(tmp_path: Path, text: str, name: str = "assistants.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- The file, checked --


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("assistants:\n  a:\n    greting: Hi\n", 3, "assistants.a.greting: unknown key"),
        (
            f'assistants:\n  a:\n    default: true\n    numbers: ["{BAKERY}"]\n'
            f'  b:\n    numbers:\n      - "{GARAGE}"\n      - "{BAKERY}"\n',
            8,
            f"{BAKERY} is already answered by 'a'",
        ),
        (
            "tools:\n  lookup:\n    description: Look it up.\n    url: https://crm.example.com/x\n"
            "assistants:\n  a:\n    tools: [lookup]\n",
            2,
            "tools.lookup.parameters: Field required",
        ),
        (
            "tools:\n  lookup:\n    description: Look it up.\n    parameters: {type: object}\n"
            "    url: ftp://crm.example.com/x\nassistants:\n  a: {}\n",
            5,
            "is not an http(s) URL",
        ),
        (
            "tools:\n  lookup:\n    description: Look it up.\n    parameters: {type: object}\n"
            "    url: http://127.0.0.1:8080/x\nassistants:\n  a: {}\n",
            5,
            "127.0.0.1 is not a public address: refused unless TOOLS_ALLOW_PRIVATE=true",
        ),
        (
            "tools:\n  lookup:\n    description: Look it up.\n    parameters: {type: object}\n"
            "    url: http://10.1.2.3/x\nassistants:\n  a: {}\n",
            5,
            "10.1.2.3 is not a public address",
        ),
        (
            "tools:\n  lookup:\n    description: Look it up.\n"
            "    parameters: {type: object, properties: {id: {type: strang}}}\n"
            "    url: https://crm.example.com/x\nassistants:\n  a: {}\n",
            4,
            "not a valid JSON Schema",
        ),
        ("assistants:\n  a:\n    tools: [nothing]\n", 3, "no tool named 'nothing'"),
        ("assistants:\n  a:\n    greeting: {prompt: hi}\n", 3, "no prompt named 'hi'"),
        ("assistants:\n  a: {}\n  b: {}\n", 1, "mark one assistant `default: true`"),
        ("assistants:\n  a:\n    numbers: [+15551234567]\n", 3, "write numbers in quotes"),
        ("assistants:\n  a:\n    numbers: ['5551234']\n", 3, "not an E.164 number"),
        ("assistants:\n  a: {}\n  a: {}\n", 3, "'a' is given twice"),
        ("assistants:\n  a: {greeting: [oops\n", 3, "not valid YAML"),
        ("assistants:\n  a:\n    language: klingon\n", 3, "not a language tag"),
    ],
)
def test_a_wrong_file_is_refused_naming_its_line(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(AssistantsFileError) as refused:
        load(path, offline_settings(webhook_secret=SECRET))
    assert refused.value.line == line, str(refused.value)
    assert str(refused.value).startswith(f"{path}:{line}: "), str(refused.value)
    assert says in str(refused.value)


def test_the_example_file_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "assistants.example.yaml"
    config = load(example, offline_settings(webhook_secret=SECRET))
    assert list(config.assistants) == ["support", "sales"]
    assert config.assistants["support"].system_prompt == config.prompts["support"]


def test_a_tool_needs_a_signing_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tools:\n  lookup:\n    description: Look it up.\n    parameters: {type: object}\n"
        "    url: https://crm.example.com/x\nassistants:\n  a:\n    tools: [lookup]\n",
    )
    with pytest.raises(AssistantsFileError, match=r":2: set WEBHOOK_SECRET, or secret_env"):
        load(path, offline_settings())
    assert load(path, offline_settings(webhook_secret=SECRET)).tools["lookup"].timeout == 5.0


def test_private_tool_urls_are_allowed_when_the_operator_says_so(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tools:\n  lookup:\n    description: Look it up.\n    parameters: {type: object}\n"
        "    url: http://localhost:8080/x\nassistants:\n  a: {}\n",
    )
    with pytest.raises(AssistantsFileError, match="localhost is this machine"):
        load(path, offline_settings(webhook_secret=SECRET))
    load(path, offline_settings(webhook_secret=SECRET, tools_allow_private=True))


async def test_the_server_does_not_start_with_a_wrong_file(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_ASSISTANTS.replace("vad_stop_secs", "vad_stop_sec"))
    server = ServerProcess(tmp_path, assistants_file=str(path))
    with pytest.raises(RuntimeError) as failed:
        await asyncio.to_thread(server.start)
    assert f"Invalid assistants file: {path}:12: assistants.garage.vad_stop_sec: unknown key" in (
        str(failed.value)
    )


# -- Calls reach their assistants --


async def test_two_numbers_reach_two_assistants_with_their_greetings(
    make_server: MakeServer, tmp_path: Path, transcribe: Callable[[bytes], str]
) -> None:
    path = write(tmp_path, TWO_ASSISTANTS)
    server = make_server(assistants_file=path, dialout_api_key=KEY, **_twilio())
    heard = {}
    for number in (BAKERY, GARAGE):
        async with SimulatedCall(server.url, to_number=number, auth_token=TEST_AUTH_TOKEN) as call:
            await call.dial()
            assert call.parameters["assistant"] == ("bakery" if number == BAKERY else "garage")
            await call.wait_for_bot_audio(timeout=30)
            await call.wait_for_bot_quiet(quiet=1.5, timeout=30)
            heard[number] = words(transcribe(call.heard))
            (bot,) = server.app.state.admission.bots()
            assert bot.assistant.name == call.parameters["assistant"]
    assert {"bakery", "like"} <= heard[BAKERY], heard[BAKERY]
    assert {"garage", "car"} <= heard[GARAGE], heard[GARAGE]

    async with reading(server.app.state.settings.database_url.get_secret_value()) as store:
        record = await record_when(store, call.call_sid)
    assert record.parameters == {"assistant": "garage"}

    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/assistants")).status_code == 401
        listed = (await client.get("/assistants", headers=AUTH)).json()["assistants"]
    assert [a["name"] for a in listed] == ["bakery", "garage"]
    assert listed[0]["system_prompt"] == "You are the bakery's phone line."
    assert listed[1]["transfer_targets"] == {"mechanic": "+15553330000"}
    assert listed[1]["recording"] == "on" and listed[1]["numbers"] == [GARAGE]


async def test_another_number_gets_the_default_and_a_query_can_name_one(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server(assistants_file=write(tmp_path, TWO_ASSISTANTS))
    async with httpx.AsyncClient() as client:
        for url, to, expected in (
            (f"{server.url}/", "+15559990000", "bakery"),
            (f"{server.url}/?assistant=garage", BAKERY, "garage"),
        ):
            form = SimulatedCall(server.url, to_number=to).webhook_params()
            answer = await client.post(url, data=form)
            _, parameters = parse_twiml(answer.text)
            assert parameters["assistant"] == expected


def _twilio(base_url: str = "http://127.0.0.1:9") -> dict[str, str]:
    return {
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_auth_token": TEST_AUTH_TOKEN,
        "twilio_api_base_url": base_url,
        "twilio_phone_number": "+15550001111",
        "public_url": OWN_URL,
    }


async def test_dialout_names_the_assistant_the_callee_talks_to(
    make_server: MakeServer, tmp_path: Path
) -> None:
    path = write(tmp_path, TWO_ASSISTANTS)
    with FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=TEST_AUTH_TOKEN) as twilio:
        server = make_server(assistants_file=path, dialout_api_key=KEY, **_twilio(twilio.base_url))
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH) as client:
            unknown = await client.post("/dialout", json={"to": GARAGE, "assistant": "florist"})
            placed = await client.post(
                "/dialout", json={"to": GARAGE, "assistant": "garage", "parameters": {"car": "7"}}
            )
            as_parameter = await client.post(
                "/dialout", json={"to": GARAGE, "parameters": {"assistant": "florist"}}
            )
        assert unknown.status_code == as_parameter.status_code == 422
        assert unknown.json()["detail"] == "No assistant named 'florist': one of bakery, garage"
        assert placed.status_code == 201, placed.text
        (created,) = twilio.calls_created()
    twiml = created.value("Twiml")
    assert twiml is not None
    _, parameters = parse_twiml(twiml)
    assert parameters["assistant"] == "garage" and parameters["car"] == "7"


# -- A change is picked up, and live calls go on --


async def test_a_changed_file_is_picked_up_and_a_broken_one_is_not(
    make_server: MakeServer, tmp_path: Path
) -> None:
    path = write(tmp_path, TWO_ASSISTANTS)
    server = make_server(assistants_file=path, dialout_api_key=KEY, **_twilio())
    hello = await asyncio.to_thread(synthesize, "Hello there.")
    async with (
        SimulatedCall(server.url, to_number=GARAGE, auth_token=TEST_AUTH_TOKEN) as live,
        httpx.AsyncClient(base_url=server.url, headers=AUTH) as client,
    ):
        await live.dial()
        await live.wait_for_bot_audio(timeout=30)
        await live.wait_for_bot_quiet(quiet=1.0, timeout=30)

        # Each version differs in size too, so even a coarse clock tells them apart.
        path.write_text(TWO_ASSISTANTS.replace("garage", "florist"))
        listed = (await client.get("/assistants")).json()["assistants"]
        assert [a["name"] for a in listed] == ["bakery", "florist"]

        path.write_text(TWO_ASSISTANTS.replace("numbers", "numbrs"))
        listed = (await client.get("/assistants")).json()["assistants"]
        assert [a["name"] for a in listed] == ["bakery", "florist"]

        # The call that started with the garage goes on talking.
        said = await live.say(hello)
        await live.wait_for_bot_audio(after=said, timeout=30)
        (bot,) = server.app.state.admission.bots()
        assert bot.assistant.name == "garage"
    assert live.closed_by == "caller"


async def test_sighup_reloads_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, TWO_ASSISTANTS)
    with ServerProcess(tmp_path, assistants_file=str(path)) as server:
        path.write_text(TWO_ASSISTANTS.replace("garage", "florist"))
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "Assistants reloaded: bakery, florist" not in server.log():
            assert time.monotonic() < deadline, server.log()[-2000:]
            await asyncio.sleep(0.1)
