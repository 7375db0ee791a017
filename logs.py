"""Log set-up: every line of a call carries its call SID; text or one JSON object a line."""

from __future__ import annotations

import sys

from loguru import logger

from settings import LogFormat, Settings

TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[call_sid]}</cyan> {message}"
)


def configure_logging(settings: Settings) -> None:
    """Send loguru's output to stderr in the configured format and level."""
    logger.remove()
    logger.configure(extra={"call_sid": "-"})
    if settings.log_format is LogFormat.JSON:
        logger.add(sys.stderr, level=settings.log_level.upper(), serialize=True)
    else:
        logger.add(sys.stderr, level=settings.log_level.upper(), format=TEXT_FORMAT)
