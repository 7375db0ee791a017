"""Log set-up: every line of a call carries its call SID; text or one JSON object a line.

A call's lines are written inside `logger.contextualize(call_sid=...)`, and so
are Pipecat's own: the asyncio tasks the pipeline starts inherit the context.
Every line, from any sink, first passes `redact` (a loguru patcher): phone
numbers are masked to their last four digits, secret settings (and the secrets
derived from them) and passwords in URLs are blotted out, and tracebacks are
rendered without variable values. Standard `logging` records (uvicorn's) are
routed through loguru too; uvicorn's access lines lose their query strings.

What callers and the bot say is never logged, at any level, whether or not
transcripts are stored (logs travel further and live longer than the records):
the DEBUG lines of the libraries that handle it (Pipecat's services, Piper,
the database driver's SQL parameters) and every TRACE line of Pipecat (each
frame, text included) are dropped.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from loguru import logger
from pydantic import SecretStr

from dialout.placers import exotel_status_token
from settings import LogFormat, Settings

TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[call_sid]}</cyan> {message}{extra[_exception]}\n"
)
JSON_FORMAT = "{extra[_json]}\n"
NO_CALL = "-"
CHATTY_LIBRARIES = ("websockets", "aiohttp.access", "hpack", "httpcore")
# Standard-logging libraries whose DEBUG and INFO lines hold what was said (spoken text,
# SQL parameters with transcript turns): never below WARNING.
SPEAKING_LIBRARIES = ("piper", "aiosqlite", "asyncpg", "sqlalchemy.engine")
# Loguru modules whose DEBUG lines hold what was said: speech-to-text results, the LLM's
# context and replies, the text to speak.
SPEAKING_MODULES = (
    "pipecat.services.",
    "pipecat.processors.frameworks.",
    "pipecat.observers.loggers.",
    "pipecat.extensions.",
)
SECRET = "[secret]"

# E.164 (+15550001111, also URL-encoded), and bare national numbers of 10+ digits
# (Exotel's 09876543210). Digits inside SIDs, hex, times and addresses are left alone.
_PHONE = re.compile(
    r"(?:(?<![\w+])\+|%2B)\d{7,15}(?!\d)"
    r"|(?<![\w.:/+%-])\d{10,15}(?![\w.:/-])",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(//[^/\s:@]+:)[^/\s@]+@")
# Secrets shorter than this would blot out ordinary words.
_MIN_SECRET_LEN = 6


def mask_phone_numbers(text: str) -> str:
    """Replace each phone number in `text` by `***` and its last four digits."""
    return _PHONE.sub(lambda m: "***" + m.group()[-4:], text)


class Redactor:
    """The loguru patcher: masks numbers and removes secrets from every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Blot out each of `secrets` (the values of secret settings) wherever it appears."""
        self.secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len)[::-1]

    def text(self, text: str) -> str:
        """`text` without secrets, with masked phone numbers."""
        for secret in self.secrets:
            text = text.replace(secret, SECRET)
        text = _URL_PASSWORD.sub(rf"\1{SECRET}@", text)
        return mask_phone_numbers(text)

    def __call__(self, record: Any) -> None:
        """Clean one loguru record in place, before any sink sees it."""
        record["message"] = self.text(record["message"])
        extra = record["extra"]
        for key, value in extra.items():
            if isinstance(value, str):
                extra[key] = self.text(value)
        extra.setdefault("call_sid", NO_CALL)
        extra["_exception"] = ""
        if (exc := record["exception"]) is not None and exc.type is not None:
            rendered = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
            extra["_exception"] = "\n" + self.text(rendered.rstrip())


def secret_values(settings: Settings) -> list[str]:
    """The values of every `SecretStr` setting that is set, and of the secrets derived from them."""
    values = (getattr(settings, name) for name in type(settings).model_fields)
    secrets = [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    if settings.dialout_api_key is not None:  # in the path of Exotel's status callbacks
        secrets.append(exotel_status_token(settings))
    return secrets


def not_private(record: Any) -> bool:
    """Whether a record may be written: no DEBUG line of what handles speech, no Pipecat TRACE."""
    level, name = record["level"].no, record["name"] or ""
    if level >= logger.level("INFO").no:
        return True
    if level < logger.level("DEBUG").no and name.startswith("pipecat"):
        return False
    return not name.startswith(SPEAKING_MODULES)


def _text_format(record: Any) -> str:
    return TEXT_FORMAT


def _json_format(record: Any) -> str:
    extra = record["extra"]
    line: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": record["message"],
        "call_sid": extra.get("call_sid", NO_CALL),
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
    }
    line |= {k: v for k, v in extra.items() if not k.startswith("_") and k not in line}
    if extra.get("_exception"):
        line["exception"] = extra["_exception"].lstrip("\n")
    extra["_json"] = json.dumps(line, default=str, ensure_ascii=False)
    return JSON_FORMAT


def _without_query(arg: object) -> object:
    """A request path without its query string (which may carry call data or credentials)."""
    if isinstance(arg, str) and arg.startswith("/") and "?" in arg:
        return arg.partition("?")[0]
    return arg


class InterceptHandler(logging.Handler):
    """Hands standard `logging` records (uvicorn's, libraries') to loguru.

    uvicorn's access lines (HTTP and websocket) show the path without its query string.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Log `record` through loguru at its level, as if from its caller."""
        if record.name.startswith("uvicorn") and isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        level: str | int
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(
    settings: Settings, sink: TextIO | Callable[[str], None] = sys.stderr
) -> None:
    """Send every log line to `sink` (stderr) in the configured format and level.

    Args:
        settings: `LOG_LEVEL`, `LOG_FORMAT`, and the secrets to keep out of the logs.
        sink: Where lines go: a text stream, or a callable taking each formatted line.
    """
    level = settings.log_level.upper()
    logger.remove()
    logger.configure(extra={"call_sid": NO_CALL}, patcher=Redactor(secret_values(settings)))
    formatter = _json_format if settings.log_format is LogFormat.JSON else _text_format
    logger.add(
        sink,
        level=level,
        format=formatter,
        colorize=False if settings.log_format is LogFormat.JSON else None,
        backtrace=False,
        diagnose=False,  # variable values in tracebacks could hold numbers and secrets
        filter=not_private,
    )
    level_no = logger.level(level).no
    logging.basicConfig(handlers=[InterceptHandler()], level=level_no, force=True)
    for name in CHATTY_LIBRARIES:  # their DEBUG lines are every frame on the wire
        logging.getLogger(name).setLevel(max(level_no, logging.INFO))
    for name in SPEAKING_LIBRARIES:
        logging.getLogger(name).setLevel(max(level_no, logging.WARNING))
