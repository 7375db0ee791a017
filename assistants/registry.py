"""`Assistants`: which assistant answers a call, from the assistants file as it is now.

    assistants = Assistants(settings)    # loads ASSISTANTS_FILE, or AssistantsFileError
    choice = assistants.for_call(call)   # by the `assistant` parameter, the number, or default
    choice.assistant.greeting, choice.tools

The file is read again when it changes (checked when a call starts, or at
once on SIGHUP); a file that turns out wrong is logged and the one before
stays in force. A call keeps the assistant it started with: a change only
reaches calls that start after it. With no file there is one assistant,
`default`, whose every setting comes from the server's settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from assistants.loading import AssistantsFileError, load
from assistants.model import Assistant, AssistantsFile, Tool
from settings import Settings
from telephony.call_info import CallInfo

DEFAULT_NAME = "default"
# The <Parameter> that carries the chosen assistant from the webhook or dial-out to the stream.
ASSISTANT_PARAMETER = "assistant"


@dataclass(frozen=True)
class Choice:
    """The assistant a call gets, and the HTTP tools it may use, from one version of the file."""

    assistant: Assistant
    tools: tuple[Tool, ...] = field(default=())


class Assistants:
    """The server's assistants, as the assistants file declares them now."""

    def __init__(self, settings: Settings) -> None:
        """Load `ASSISTANTS_FILE`, when set.

        Raises:
            AssistantsFileError: The file is missing or wrong: the server must not start.
        """
        self._settings = settings
        self.path: Path | None = settings.assistants_file
        self._stamp: tuple[int, int, int] | None = None
        self._config: AssistantsFile | None = None
        if self.path is not None:
            self._stamp = self._read_stamp()
            self._config = load(self.path, settings)
            logger.info(f"Assistants: {', '.join(self._config.assistants)} (from {self.path})")

    def _read_stamp(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def reload(self) -> bool:
        """Read the file again; keep the version in force if the new one is wrong.

        Returns:
            Whether the new version is now in force.
        """
        if self.path is None:
            return False
        self._stamp = self._read_stamp()
        try:
            config = load(self.path, self._settings)
        except AssistantsFileError as e:
            logger.error(f"Assistants file NOT reloaded, the previous version stays: {e}")
            return False
        self._config = config
        logger.info(f"Assistants reloaded: {', '.join(config.assistants)}")
        return True

    def _current(self) -> AssistantsFile | None:
        if self.path is not None and self._read_stamp() != self._stamp:
            self.reload()
        return self._config

    def all(self) -> list[Assistant]:
        """Every assistant, the default first."""
        config = self._current()
        if config is None:
            return [Assistant(name=DEFAULT_NAME, default=True)]
        default = self._default(config)
        return [default, *(a for a in config.assistants.values() if a is not default)]

    def named(self, name: str) -> Choice | None:
        """The assistant called `name`, or None."""
        config = self._current()
        if config is None:
            return self._choice(None, None) if name == DEFAULT_NAME else None
        assistant = config.assistants.get(name)
        return None if assistant is None else self._choice(config, assistant)

    def for_call(self, call: CallInfo) -> Choice:
        """The assistant a call gets: the one its `assistant` parameter names, else the one
        answering the number called (inbound), else the default."""
        config = self._current()
        if config is None:
            return self._choice(None, None)
        wanted = call.parameters.get(ASSISTANT_PARAMETER)
        if wanted:
            if wanted in config.assistants:
                return self._choice(config, config.assistants[wanted])
            logger.warning(f"No assistant named {wanted!r} (any more): the default answers")
        elif not call.outbound:
            return self.for_number(call.to_number)
        return self._choice(config, self._default(config))

    def for_number(self, number: str) -> Choice:
        """The assistant answering calls to `number`: its own, or the default."""
        config = self._current()
        if config is None:
            return self._choice(None, None)
        for assistant in config.assistants.values():
            if number in assistant.numbers:
                return self._choice(config, assistant)
        return self._choice(config, self._default(config))

    @staticmethod
    def _default(config: AssistantsFile) -> Assistant:
        marked = [a for a in config.assistants.values() if a.default]
        return marked[0] if marked else next(iter(config.assistants.values()))

    @staticmethod
    def _choice(config: AssistantsFile | None, assistant: Assistant | None) -> Choice:
        if config is None or assistant is None:
            return Choice(Assistant(name=DEFAULT_NAME, default=True))
        tools = tuple(config.tools[name] for name in assistant.tools if name in config.tools)
        return Choice(assistant, tools)
