"""Bulk usage files (seed 004, bulk mode): a CSV or JSON-lines file of usage events goes through
the same ingestion as `POST /v1/usage-events` (`usage.ingest`), 1,000 rows at a time, and a
report of what happened to each row is written next to it as `results/<key>.json`.

File formats (events/README.md, "Bulk usage files"):
- CSV (RFC 4180, UTF-8, optional BOM): a header row naming `transaction_id`, `metric_code`,
  `timestamp`, `subscription_id` and/or `external_subscription_id` (one of them filled per row),
  and one `properties.<name>` column per event property. An empty cell is an absent value.
- JSON lines (https://jsonlines.org): one JSON object per line, shaped like one event of
  `POST /v1/usage-events`. Numbers are read as exact decimals (never binary floats).

Rows are named by their line number in the file (1-based; a CSV's header is line 1), so a
rejection reads `rows[7].timestamp`. Blank lines are skipped. A re-dropped file changes
nothing: its transaction ids are all duplicates (a row whose transaction id was accepted before
with other content is also listed in `differing_duplicates`: the first event stands). A file
that cannot be read as its format (an unknown extension, not UTF-8, a bad CSV header, a broken
CSV quote) gets a report whose `error` names the problem; the rows before a mid-file CSV error
are kept.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from shared.billing.errors import ValidationError
from shared.services import usage
from shared.services.context import Actor, Documents, Ports

FileFormat = Literal["csv", "jsonl"]
CHUNK = usage.MAX_BATCH  # rows per `usage.ingest` call
PARAM = "rows"
RESULTS_PREFIX = "results/"
MAX_LISTED_REJECTIONS = 10_000  # the report lists at most this many; the count is always exact
PROPERTY_PREFIX = "properties."
REQUIRED_COLUMNS = ("transaction_id", "metric_code", "timestamp")
REFERENCE_COLUMNS = ("subscription_id", "external_subscription_id")
EXTENSIONS: dict[str, FileFormat] = {".csv": "csv", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class Row:
    """One line of the file: the raw event, or why it could not even be read as one."""

    number: int  # 1-based line number in the file
    event: dict | None = None
    field: str | None = None  # the field at fault when `event` is None (None: the whole row)
    message: str | None = None


def report_key(key: str) -> str:
    return f"{RESULTS_PREFIX}{key}.json"


def file_format_of(key: str) -> FileFormat:
    """The format named by the key's extension (case-insensitive)."""
    lowered = key.lower()
    for extension, name in EXTENSIONS.items():
        if lowered.endswith(extension):
            return name
    raise ValidationError(f"unsupported file type '{key.rsplit('/', 1)[-1]}': drop .csv or .jsonl files",
                          param="file")


def import_usage_file(ports: Ports, actor: Actor, key: str, body: bytes, file_format: FileFormat | None = None,
                      *, files: Documents) -> dict:
    """Ingest every row of the file `key` (contents `body`) and write its report to `files`.

    Returns the report (also stored at `results/<key>.json`): counts of rows, accepted,
    duplicates, late and rejected events, the rejections with their row and field, and
    `error` (None, or what made the file unreadable, with `param`).
    """
    actor.require("usage:write")
    totals, rejections = usage.IngestResult(), _Rejections()  # totals.differing_duplicates: by row
    rows = 0
    unreadable: list[dict] = []
    batch: list[Row] = []
    for row in _readable_rows(body, key, file_format, unreadable):
        rows += 1
        if row.event is None:
            rejections.add(row.number, row.field, row.message)
            continue
        batch.append(row)
        if len(batch) == CHUNK:
            _ingest(ports, actor, batch, totals, rejections)
            batch = []
    if batch:  # also the rows before a mid-file error
        _ingest(ports, actor, batch, totals, rejections)
    listed, rejected_count = rejections.result()
    report = {
        "key": key,
        "report_key": report_key(key),
        "format": file_format or _known_format(key),
        "imported_at": ports.clock.now().isoformat().replace("+00:00", "Z"),
        "rows": rows,
        "accepted": totals.accepted,
        "duplicates": totals.duplicates,
        "late": totals.late,
        "rejected_count": rejected_count,
        "rejected": listed,
        "differing_duplicates": totals.differing_duplicates[:MAX_LISTED_REJECTIONS],
        "error": unreadable[0] if unreadable else None,
    }
    files.put(report_key(key), json.dumps(report, indent=1).encode(), "application/json")
    return report


def _readable_rows(body: bytes, key: str, file_format: FileFormat | None, unreadable: list[dict]) -> Iterator[Row]:
    """The file's rows until it cannot be read any further; then why, in `unreadable`."""
    try:
        yield from parse_rows(body, file_format or file_format_of(key))
    except ValidationError as problem:  # the file itself: format, encoding, header, CSV syntax
        unreadable.append({"message": problem.message, "param": problem.param})


def _known_format(key: str) -> str | None:
    try:
        return file_format_of(key)
    except ValidationError:
        return None


def _ingest(ports: Ports, actor: Actor, batch: list[Row], totals: usage.IngestResult,
            rejections: _Rejections) -> None:
    result = usage.ingest(ports, actor, [row.event for row in batch], param=PARAM)
    totals.accepted += result.accepted
    totals.duplicates += result.duplicates
    totals.late += result.late
    for duplicate in result.differing_duplicates:
        row = batch[duplicate["index"]].number
        totals.differing_duplicates.append({"row": row, "param": f"{PARAM}[{row}]",
                                            "transaction_id": duplicate["transaction_id"],
                                            "message": duplicate["message"]})
    for rejection in result.rejected:
        # ingest names the position in the batch ("rows[3].timestamp"); the report names the line
        index = rejection["index"]
        field = rejection["param"].removeprefix(f"{PARAM}[{index}]").removeprefix(".") or None
        rejections.add(batch[index].number, field, rejection["message"])


@dataclass
class _Rejections:
    """The first MAX_LISTED_REJECTIONS rejections by row, and how many there were in all, in
    bounded memory (the rows of one chunk may arrive out of order)."""

    listed: list[dict] = field(default_factory=list)
    unlisted: int = 0

    def add(self, number: int, field_path: str | None, message: str | None) -> None:
        param = f"{PARAM}[{number}].{field_path}" if field_path else f"{PARAM}[{number}]"
        self.listed.append({"row": number, "field": field_path, "param": param, "message": message})
        if len(self.listed) >= 2 * MAX_LISTED_REJECTIONS:
            self._trim()

    def _trim(self) -> None:
        self.listed.sort(key=lambda r: r["row"])
        self.unlisted += len(self.listed[MAX_LISTED_REJECTIONS:])
        del self.listed[MAX_LISTED_REJECTIONS:]

    def result(self) -> tuple[list[dict], int]:
        self._trim()
        return self.listed, len(self.listed) + self.unlisted


# parsing ---------------------------------------------------------------------------------------
def parse_rows(body: bytes, file_format: FileFormat) -> Iterator[Row]:
    """The file's rows, lazily. Raises ValidationError (param `file`, `header...` or
    `rows[n]`) when the file as a whole cannot be read; a bad row is a Row with a message."""
    text = _text(body)
    if file_format == "csv":
        return _csv_rows(text)
    if file_format == "jsonl":
        return _jsonl_rows(text)
    raise ValidationError(f"unsupported file format '{file_format}': csv or jsonl", param="file")


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # Excel writes a BOM in front of UTF-8 CSV
    except UnicodeDecodeError as error:
        raise ValidationError(f"the file is not UTF-8 text (byte {error.start} cannot be decoded)",
                              param="file") from None


def _csv_rows(text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header == []:  # blank lines before the header
            header = next(reader, None)
    except csv.Error as error:
        raise ValidationError(f"the header is not valid CSV: {error}", param="header") from None
    if header is None:
        raise ValidationError("the file is empty: a CSV file starts with a header row", param="header")
    columns = _columns(header)
    consumed = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ValidationError(f"line {consumed + 1} is not valid CSV: {error}",
                                  param=f"{PARAM}[{consumed + 1}]") from None
        number, consumed = consumed + 1, reader.line_num  # a quoted cell may span lines
        if not cells:
            continue
        if len(cells) != len(columns):
            yield Row(number, field=None,
                      message=f"expected {len(columns)} fields as in the header, got {len(cells)}")
            continue
        yield Row(number, event=_event(columns, cells))


def _columns(header: list[str]) -> list[str]:
    """The header's column names, checked: known names only, each once, the required ones present."""
    columns = [name.strip() for name in header]
    known = set(REQUIRED_COLUMNS) | set(REFERENCE_COLUMNS)
    seen: set[str] = set()
    for position, name in enumerate(columns):
        is_property = name.startswith(PROPERTY_PREFIX) and len(name) > len(PROPERTY_PREFIX)
        if name not in known and not is_property:
            raise ValidationError(
                f"unknown column '{name}' (column {position + 1}): expected {', '.join(REQUIRED_COLUMNS)}, "
                f"{' or '.join(REFERENCE_COLUMNS)} and properties.<name> columns", param=f"header[{position}]")
        if name in seen:
            raise ValidationError(f"column '{name}' appears twice", param=f"header[{position}]")
        seen.add(name)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        raise ValidationError(f"the header lacks the column(s) {', '.join(missing)}", param="header")
    if not seen & set(REFERENCE_COLUMNS):
        raise ValidationError("the header needs a subscription_id or an external_subscription_id column",
                              param="header")
    return columns


def _event(columns: list[str], cells: list[str]) -> dict:
    event: dict = {}
    properties: dict[str, str] = {}
    for name, value in zip(columns, cells, strict=True):
        if value == "":
            continue
        if name.startswith(PROPERTY_PREFIX):
            properties[name.removeprefix(PROPERTY_PREFIX)] = value
        else:
            event[name] = value
    event["properties"] = properties
    return event


def _jsonl_rows(text: str) -> Iterator[Row]:
    for number, line in enumerate(io.StringIO(text, newline="\n"), start=1):  # split on \n only
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            value = json.loads(line, parse_float=Decimal, parse_constant=_no_constant)
        except ValueError as error:
            yield Row(number, field=None, message=f"not valid JSON: {_json_error(error)}")
            continue
        if not isinstance(value, dict):
            yield Row(number, field=None, message=f"expected a JSON object, got {type(value).__name__}")
            continue
        yield Row(number, event=value)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _json_error(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (column {error.colno})"
    return str(error)
