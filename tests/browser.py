"""Driving the console in a real browser: Debian's Chromium, headless, through Playwright.

Playwright cannot download a browser here, so it launches `/usr/bin/chromium`
(`make test` installs it: scripts/ensure-chromium.sh). A `ConsolePage` keeps
every error the page logs, so a test can say there were none, and writes the
screenshots the README points reviewers to (`docs/screenshots/`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Response,
    ViewportSize,
    async_playwright,
    expect,
)

from simulator.audio import resample_pcm

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "docs" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# Chromium's fake microphone reads a WAV file; 48 kHz 16-bit mono is what it plays best.
MICROPHONE_RATE = 48000


def chromium() -> Path:
    """Debian's Chromium, installed if missing; the test skips only if it cannot be."""
    if not os.access(CHROMIUM, os.X_OK):
        done = subprocess.run(
            [str(ROOT / "scripts" / "ensure-chromium.sh")], capture_output=True, text=True
        )
        if done.returncode != 0 or not os.access(CHROMIUM, os.X_OK):
            pytest.skip(f"Chromium is not installed and could not be: {done.stderr.strip()}")
    return CHROMIUM


def microphone_flags(wav: Path) -> list[str]:
    """Flags that give the page a microphone saying what `wav` holds, once."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]


def write_microphone_wav(path: Path, pcm8k: bytes) -> Path:
    """Write 8 kHz PCM16 speech as the WAV Chromium's fake microphone plays."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(MICROPHONE_RATE)
        wav.writeframes(resample_pcm(pcm8k, 8000, MICROPHONE_RATE))
    return path


@asynccontextmanager
async def launched(*extra: str) -> AsyncIterator[Browser]:
    """A headless Chromium, closed afterwards."""
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable), args=[*FLAGS, *extra]
        )
        try:
            yield browser
        finally:
            await browser.close()


class ConsolePage:
    """One browser tab on the console, with what went wrong in it.

    Attributes:
        page: Playwright's page.
        errors: Errors the page logged or threw, loads that failed (but pages answered with
            an `expect_status`), and dialogs it opened (an `alert` is one).
    """

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.expected_statuses: set[int] = set()
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("dialog", self._dialog)

    @classmethod
    @asynccontextmanager
    async def open(cls, browser: Browser, base_url: str) -> AsyncIterator[ConsolePage]:
        """A fresh browser context (no cookies) and a tab in it."""
        context = await browser.new_context(viewport=DESKTOP, base_url=base_url)
        try:
            yield cls(await context.new_page(), base_url)
        finally:
            await context.close()

    def _console(self, message: ConsoleMessage) -> None:
        # A failed load is judged from its response (below), which says what it was.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console error: {message.text}")

    def _response(self, response: Response) -> None:
        expected = response.request.resource_type == "document" and (
            response.status in self.expected_statuses
        )
        if response.status >= 400 and not expected:
            self.errors.append(f"{response.status} for {response.url}")

    def expect_status(self, status: int) -> None:
        """From now on, a page answered with `status` is no error (a form sent back to fix)."""
        self.expected_statuses.add(status)

    async def _dialog(self, dialog: object) -> None:
        self.errors.append(f"dialog: {getattr(dialog, 'message', dialog)}")
        with contextlib.suppress(Error):
            await dialog.dismiss()  # type: ignore[attr-defined]

    async def log_in(self, key: str, shot: str | None = None) -> None:
        """Log in from the login page, with the keyboard only."""
        await self.page.goto("/console")
        assert "/console/login" in self.page.url
        if shot:
            await self.shot(shot)
        # Typing before autofocus lands would lose the key's first characters.
        await expect(self.page.locator("#key")).to_be_focused()
        await self.page.keyboard.type(key)
        async with self.page.expect_navigation():
            await self.page.keyboard.press("Enter")
        assert self.page.url.rstrip("/").endswith("/console"), self.page.url

    async def shot(self, name: str, full_page: bool = True) -> None:
        """Save a screenshot of the page as docs/screenshots/NAME.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def assert_no_errors(self) -> None:
        """Fail with what the page logged, if it logged any error."""
        assert not self.errors, self.errors
