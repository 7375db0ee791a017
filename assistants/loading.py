"""Reading an assistants file (YAML), with errors that name the file and the line.

    config = load(Path("assistants.yaml"), settings)   # or AssistantsFileError

The file is checked whole before anything uses it: its shape (`model.py`), then
what ties its parts together (prompts and tools named, one default, each number
answered by one assistant), then what the server must be able to do (reach the
URLs, sign the requests).

    AssistantsFileError   the file is missing, unreadable or wrong; `str()` says where
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from assistants.model import BUILT_IN_TOOLS, Assistant, AssistantsFile, PromptRef
from settings import Settings
from tools.guard import literal_host_refusal
from tools.signing import check_secret

Path_ = tuple[str | int, ...]


class AssistantsFileError(ValueError):
    """What is wrong with an assistants file, and where: `path:line: message`."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.line = line


def _read_yaml(path: Path, text: str) -> tuple[Any, dict[Path_, int]]:
    """The document, and the line each mapping key and list item is on."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise AssistantsFileError(
            path, mark.line + 1 if mark else None, f"not valid YAML: {e.problem or e}"
        ) from None
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {}

    def build(node: yaml.Node, at: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            built: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int):
                    raise AssistantsFileError(path, line, "keys must be plain names")
                if key in built:
                    raise AssistantsFileError(path, line, f"{key!r} is given twice")
                lines[(*at, key)] = line
                built[key] = build(value_node, (*at, key))
            return built
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                lines[(*at, index)] = item.start_mark.line + 1
                items.append(build(item, (*at, index)))
            return items
        return loader.construct_object(node, deep=True)

    if node is None:
        raise AssistantsFileError(path, None, "the file is empty: it needs `assistants:`")
    return build(node, ()), lines


def _line(lines: Mapping[Path_, int], at: Path_) -> int | None:
    # The deepest key or item on record along `at`: an unknown key's own line,
    # a missing field's parent.
    for end in range(len(at), 0, -1):
        if at[:end] in lines:
            return lines[at[:end]]
    return 1


def _named(document: Any, path: Path, lines: Mapping[Path_, int]) -> Any:
    # Each assistant and tool takes its name from its key.
    if not isinstance(document, dict):
        raise AssistantsFileError(path, 1, "the file must be a mapping with `assistants:`")
    for section in ("assistants", "tools"):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for key, entry in entries.items():
            if isinstance(entry, dict):
                if "name" in entry:
                    at: Path_ = (section, key, "name")
                    raise AssistantsFileError(path, _line(lines, at), "the name is the key above")
                entry["name"] = key
    return document


def _validated(document: Any, path: Path, lines: Mapping[Path_, int]) -> AssistantsFile:
    try:
        return AssistantsFile.model_validate(_named(document, path, lines))
    except ValidationError as e:
        error = e.errors()[0]
        at = tuple(part for part in error["loc"] if isinstance(part, str | int))
        # Unions name the alternative tried (`str`, `PromptRef`): not part of the path.
        at = tuple(part for part in at if part not in ("str", "PromptRef"))
        field = ".".join(str(part) for part in at) or "the file"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise AssistantsFileError(path, _line(lines, at), f"{field}: {message}") from None


def _resolved(config: AssistantsFile, path: Path, lines: Mapping[Path_, int]) -> AssistantsFile:
    """Prompts named by reference replaced by their text; every name checked."""
    assistants: dict[str, Assistant] = {}
    for name, assistant in config.assistants.items():
        texts: dict[str, Any] = {}
        for field in ("system_prompt", "greeting"):
            value = getattr(assistant, field)
            if isinstance(value, PromptRef):
                if value.prompt not in config.prompts:
                    at: Path_ = ("assistants", name, field)
                    raise AssistantsFileError(
                        path, _line(lines, at), f"no prompt named {value.prompt!r} in `prompts`"
                    )
                texts[field] = config.prompts[value.prompt]
        for index, tool in enumerate(assistant.tools):
            if tool not in config.tools and tool not in BUILT_IN_TOOLS:
                at = ("assistants", name, "tools", index)
                raise AssistantsFileError(path, _line(lines, at), f"no tool named {tool!r}")
        assistants[name] = assistant.model_copy(update=texts)
    for name in config.tools:
        if name in BUILT_IN_TOOLS:
            at = ("tools", name)
            raise AssistantsFileError(path, _line(lines, at), f"{name!r} is a built-in tool")
    return config.model_copy(update={"assistants": assistants})


def _check_routing(config: AssistantsFile, path: Path, lines: Mapping[Path_, int]) -> None:
    answered: dict[str, str] = {}
    for name, assistant in config.assistants.items():
        for index, number in enumerate(assistant.numbers):
            if number in answered:
                at: Path_ = ("assistants", name, "numbers", index)
                raise AssistantsFileError(
                    path, _line(lines, at), f"{number} is already answered by {answered[number]!r}"
                )
            answered[number] = name
    defaults = [name for name, assistant in config.assistants.items() if assistant.default]
    if len(defaults) > 1:
        at = ("assistants", defaults[1], "default")
        raise AssistantsFileError(
            path, _line(lines, at), f"only one default assistant: {defaults[0]!r} is one already"
        )
    if not defaults and len(config.assistants) > 1:
        raise AssistantsFileError(
            path, _line(lines, ("assistants",)), "mark one assistant `default: true`"
        )


def _check_reach(
    config: AssistantsFile, path: Path, lines: Mapping[Path_, int], settings: Settings
) -> None:
    """Every URL may be called, and every tool request can be signed."""
    urls = [(("tools", name, "url"), tool.url) for name, tool in config.tools.items()]
    urls += [
        (("assistants", name, "events_url"), assistant.events_url)
        for name, assistant in config.assistants.items()
        if assistant.events_url
    ]
    for where, url in urls:
        if not settings.tools_allow_private and (refusal := literal_host_refusal(url)):
            raise AssistantsFileError(
                path, _line(lines, where), f"{refusal}: refused unless TOOLS_ALLOW_PRIVATE=true"
            )
    for name, assistant in config.assistants.items():
        if assistant.events_url and settings.webhook_secret is None:
            line = _line(lines, ("assistants", name, "events_url"))
            raise AssistantsFileError(path, line, "events need WEBHOOK_SECRET")
    for name, tool in config.tools.items():
        at = ("tools", name)
        if tool.secret_env is None:
            if settings.webhook_secret is None:
                raise AssistantsFileError(
                    path, _line(lines, at), "set WEBHOOK_SECRET, or secret_env, to sign its calls"
                )
            continue
        secret = os.environ.get(tool.secret_env) or dotenv_values(".env").get(tool.secret_env)
        if not secret:
            raise AssistantsFileError(
                path, _line(lines, (*at, "secret_env")), f"{tool.secret_env} is not set"
            )
        try:
            check_secret(secret)
        except ValueError as e:
            raise AssistantsFileError(
                path, _line(lines, (*at, "secret_env")), f"{tool.secret_env} {e}"
            ) from None


def load(path: Path, settings: Settings) -> AssistantsFile:
    """Read and check the assistants file at `path`.

    Raises:
        AssistantsFileError: It cannot be read, or something in it is wrong.
    """
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise AssistantsFileError(path, None, "an assistants file is YAML (.yaml or .yml)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AssistantsFileError(path, None, f"cannot read it: {e}") from None
    document, lines = _read_yaml(path, text)
    config = _resolved(_validated(document, path, lines), path, lines)
    _check_routing(config, path, lines)
    _check_reach(config, path, lines, settings)
    return config
