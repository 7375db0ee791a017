"""The calls this process is holding right now."""

from __future__ import annotations

from bot import Bot


class CallRegistry:
    """Live calls by call SID, for admission control, drain and health."""

    def __init__(self) -> None:
        self._calls: dict[str, Bot] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, bot: Bot) -> None:
        """Track a call from its pipeline's start."""
        self._calls[bot.call.call_sid] = bot

    def remove(self, bot: Bot) -> None:
        """Forget a call once its pipeline has ended."""
        if self._calls.get(bot.call.call_sid) is bot:
            del self._calls[bot.call.call_sid]

    def bots(self) -> list[Bot]:
        """The live calls' bots."""
        return list(self._calls.values())
