"""Export call records to CSV or JSON, from the database `DATABASE_URL` names.

    python -m records.export --format csv --output calls.csv
    python -m records.export --format json --since 2026-01-01 --direction inbound

CSV has one row a call, its transcript in one column (a line a turn); JSON
has one object a call, as `GET /calls/{sid}` answers, with its turns. Calls
come newest first; calls that start while the export runs are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import DBAPIError

from records.models import Call
from records.schemas import CallWithTranscript
from records.store import CallStore

FORMATS = ("csv", "json")
CSV_COLUMNS = (
    "call_sid",
    "provider",
    "direction",
    "from",
    "to",
    "started_at",
    "answered_at",
    "ended_at",
    "end_reason",
    "status",
    "answered_by",
    "duration",
    "parameters",
    "transcript",
)
BATCH = 200


async def calls(store: CallStore, batch: int = BATCH, **filters: Any) -> AsyncIterator[Call]:
    """Every call matching `filters` (see `CallStore.list_calls`), with its turns, newest first."""
    filters.setdefault("until", datetime.now(UTC))  # a fixed set, so pages do not shift
    offset = 0
    while True:
        page = await store.list_calls(**filters, limit=batch, offset=offset, with_turns=True)
        for call in page.calls:
            yield call
        offset += len(page.calls)
        if not page.calls or offset >= page.total:
            return


def csv_row(call: Call) -> dict[str, str]:
    """A call as one CSV row."""
    record = CallWithTranscript.of(call).model_dump(mode="json")
    row = {name: "" if record.get(name) is None else str(record[name]) for name in CSV_COLUMNS}
    row["parameters"] = json.dumps(record["parameters"], ensure_ascii=False)
    row["transcript"] = "\n".join(f"{t['at']} {t['role']}: {t['text']}" for t in record["turns"])
    return row


async def export(store: CallStore, out: TextIO, fmt: str, **filters: Any) -> int:
    """Write the calls matching `filters` to `out` as `fmt` (csv or json); return how many."""
    records = calls(store, **filters)
    # Read before writing anything, so a database out of reach leaves no half a file.
    first = await anext(records, None)
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        call = first
        while call is not None:
            writer.writerow(csv_row(call))
            count += 1
            call = await anext(records, None)
        return count
    out.write("[")
    call = first
    while call is not None:
        record = CallWithTranscript.of(call).model_dump_json(indent=2)
        out.write(("," if count else "") + "\n" + record)
        count += 1
        call = await anext(records, None)
    out.write("\n]\n" if count else "]\n")
    return count


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m records.export", description="Export call records to CSV or JSON."
    )
    parser.add_argument("--format", choices=FORMATS, default="csv")
    parser.add_argument("--output", "-o", help="file to write (default: standard output)")
    parser.add_argument("--direction", choices=("inbound", "outbound"))
    parser.add_argument("--status", help="only calls whose latest status is this")
    parser.add_argument("--since", type=_moment, help="started at or after (ISO 8601, UTC)")
    parser.add_argument("--until", type=_moment, help="started before (ISO 8601, UTC)")
    parser.add_argument(
        "--database-url", help="where the records are (default: the server's DATABASE_URL)"
    )
    return parser


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    if args.database_url:
        url = args.database_url
    else:
        from settings import Settings

        url = Settings().database_url.get_secret_value()
    store = CallStore(url)
    filters = {
        name: value
        for name in ("direction", "status", "since", "until")
        if (value := getattr(args, name)) is not None
    }
    try:
        return await export(store, out, args.format, **filters)
    except DBAPIError as e:
        raise SystemExit(f"export: cannot read call records from {store.url}: {e.orig}") from None
    except OSError as e:
        raise SystemExit(f"export: cannot reach the database at {store.url}: {e}") from None
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line."""
    args = _parser().parse_args(argv)
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                try:
                    count = asyncio.run(_run(args, out))
                except BaseException:
                    Path(args.output).unlink(missing_ok=True)  # no empty or half file
                    raise
        else:
            count = asyncio.run(_run(args, sys.stdout))
    except ValueError as e:
        raise SystemExit(f"export: {e}") from None
    print(f"exported {count} calls", file=sys.stderr)


if __name__ == "__main__":
    main()
