"""Bulk usage files: the CSV / JSON-lines parser and the chunking, row numbering and report of
`import_usage_file` (with `usage.ingest` replaced by a recording fake; the real ingestion runs in
tests/integration/test_usage_import_handler.py and tests/e2e/test_usage_import.py)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.billing.errors import PermissionDeniedError, ValidationError
from shared.services import usage, usage_import
from shared.services.context import Actor
from shared.services.usage_import import Row, file_format_of, import_usage_file, parse_rows, report_key

HEADER = "transaction_id,external_subscription_id,metric_code,timestamp,properties.quantity,properties.zone"
ACTOR = Actor("test", "cre")


def rows(text: str | bytes, file_format: str = "csv") -> list[Row]:
    return list(parse_rows(text.encode() if isinstance(text, str) else text, file_format))


# -- CSV ----------------------------------------------------------------------------------------

def test_csv_rows_become_api_events_named_by_their_line():
    parsed = rows(f"{HEADER}\nt-1,API-1,api_calls,2025-03-02T10:00:00Z,500,\n\n"
                  "t-2,API-1,voice,2025-03-03T10:00:00Z,30,intl\n")
    assert parsed == [
        Row(2, event={"transaction_id": "t-1", "external_subscription_id": "API-1", "metric_code": "api_calls",
                      "timestamp": "2025-03-02T10:00:00Z", "properties": {"quantity": "500"}}),
        Row(4, event={"transaction_id": "t-2", "external_subscription_id": "API-1", "metric_code": "voice",
                      "timestamp": "2025-03-03T10:00:00Z", "properties": {"quantity": "30", "zone": "intl"}}),
    ]  # line 3 is blank; an empty cell is an absent property


def test_rfc_4180_quoting_crlf_and_a_cell_spanning_lines():
    # RFC 4180 section 2 (https://www.rfc-editor.org/rfc/rfc4180#section-2): CRLF line breaks (rule 1),
    # a quoted field may hold commas and line breaks (rule 6), a quote inside is doubled (rule 7).
    text = ('transaction_id,subscription_id,metric_code,timestamp,properties.note\r\n'
            '"t,1",sub_1,calls,2025-03-02T10:00:00Z,"say ""hi"""\r\n'
            't-2,sub_1,calls,2025-03-02T11:00:00Z,"two\r\nlines"\r\n'
            't-3,sub_1,calls,2025-03-02T12:00:00Z,x\r\n')
    parsed = rows(text)
    assert [(r.number, r.event["transaction_id"], r.event["properties"]["note"]) for r in parsed] == [
        (2, "t,1", 'say "hi"'), (3, "t-2", "two\r\nlines"), (5, "t-3", "x")]  # t-2 spans lines 3-4


def test_a_utf8_bom_from_excel_is_not_part_of_the_first_column():
    (row,) = rows(b"\xef\xbb\xbf" + f"{HEADER}\nt-1,API-1,api_calls,2025-03-02T10:00:00Z,1,\n".encode())
    assert row.event["transaction_id"] == "t-1"


def test_a_row_with_the_wrong_number_of_fields_is_rejected_alone():
    parsed = rows(f"{HEADER}\nt-1,API-1,api_calls,2025-03-02T10:00:00Z\nt-2,API-1,api_calls,2025-03-02T10:00:00Z,1,\n")
    assert parsed[0] == Row(2, field=None, message="expected 6 fields as in the header, got 4")
    assert parsed[1].event["transaction_id"] == "t-2"


@pytest.mark.parametrize(("header", "param", "words"), [
    ("transaction_id,subscription_id,metric_code,timestamp,quantity", "header[4]", "unknown column 'quantity'"),
    ("transaction_id,subscription_id,metric_code,timestamp,properties.", "header[4]", "unknown column"),
    ("transaction_id,subscription_id,metric_code,metric_code,timestamp", "header[3]", "appears twice"),
    ("transaction_id,subscription_id,metric_code", "header", "lacks the column(s) timestamp"),
    ("transaction_id,metric_code,timestamp,properties.quantity", "header", "subscription_id"),
])
def test_a_bad_header_names_the_problem(header, param, words):
    with pytest.raises(ValidationError) as error:
        rows(f"{header}\nt-1,sub_1,calls,2025-03-02T10:00:00Z,1\n")
    assert error.value.param == param and words in error.value.message


@pytest.mark.parametrize("body", [b"", b"\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_csv_file_has_no_header(body):
    with pytest.raises(ValidationError) as error:
        rows(body)
    assert error.value.param == "header" and "empty" in error.value.message


def test_broken_csv_quoting_stops_the_file_at_its_line():
    parsed = parse_rows(f'{HEADER}\nt-1,API-1,api_calls,2025-03-02T10:00:00Z,1,\n"t-2"x,API-1\n'.encode(), "csv")
    assert next(parsed).number == 2
    with pytest.raises(ValidationError) as error:
        next(parsed)
    assert error.value.param == "rows[3]" and "not valid CSV" in error.value.message


def test_a_file_that_is_not_utf8_text_is_refused():
    with pytest.raises(ValidationError) as error:
        rows(b"\x89PNG\r\n\x1a\n\x00\x00", "csv")
    assert (error.value.param, error.value.message) == ("file", "the file is not UTF-8 text (byte 0 cannot be decoded)")


# -- JSON lines ---------------------------------------------------------------------------------

def test_json_lines_keep_numbers_exact_and_reject_lines_that_are_not_objects():
    # https://jsonlines.org: UTF-8, one JSON value per line, "\r\n" accepted (surrounding white space is ignored)
    text = ('{"transaction_id":"t-1","subscription_id":"sub_1","metric_code":"gb","timestamp":"2025-03-02T10:00:00Z",'
            '"properties":{"gb":0.1,"n":3}}\r\n'
            '\n'
            '[1,2]\n'
            '{"transaction_id": "t-2",\n'
            'NaN\n')
    parsed = rows(text, "jsonl")
    assert parsed[0] == Row(1, event={"transaction_id": "t-1", "subscription_id": "sub_1", "metric_code": "gb",
                                      "timestamp": "2025-03-02T10:00:00Z",
                                      "properties": {"gb": Decimal("0.1"), "n": 3}})
    assert [(r.number, r.message) for r in parsed[1:]] == [
        (3, "expected a JSON object, got list"),
        (4, "not valid JSON: Expecting property name enclosed in double quotes (column 26)"),
        (5, "not valid JSON: NaN is not a number"),
    ]


@pytest.mark.parametrize(("key", "expected"), [
    ("incoming/a.csv", "csv"), ("incoming/2025/A.JSONL", "jsonl"), ("incoming/a.csv.jsonl", "jsonl")])
def test_the_format_comes_from_the_extension(key, expected):
    assert file_format_of(key) == expected


def test_an_unknown_extension_is_refused():
    with pytest.raises(ValidationError) as error:
        file_format_of("incoming/usage.xlsx")
    assert error.value.param == "file" and "usage.xlsx" in error.value.message


# -- properties: what goes in comes back --------------------------------------------------------

cell = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
event = st.fixed_dictionaries({
    "transaction_id": st.text("abcdefghij0123456789-_", min_size=1, max_size=16),
    "external_subscription_id": cell,
    "metric_code": st.sampled_from(["api_calls", "voice_minutes"]),
    "timestamp": st.sampled_from(["2025-03-02T10:00:00Z", "2025-03-31T23:59:59Z"]),
    "properties": st.fixed_dictionaries({}, optional={"quantity": cell, "zone": cell}),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(event, max_size=20))
def test_csv_written_by_pythons_csv_module_reads_back_as_the_same_events(events):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADER.split(","))
    for e in events:
        writer.writerow([e["transaction_id"], e["external_subscription_id"], e["metric_code"], e["timestamp"],
                         e["properties"].get("quantity", ""), e["properties"].get("zone", "")])
    parsed = rows(out.getvalue())
    assert [r.event for r in parsed] == events
    assert all(later.number > earlier.number for earlier, later in zip(parsed, parsed[1:], strict=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(event, max_size=20))
def test_json_lines_read_back_as_the_same_events_numbered_from_one(events):
    parsed = rows("".join(json.dumps(e) + "\n" for e in events), "jsonl")
    assert [(r.number, r.event) for r in parsed] == [(n, e) for n, e in enumerate(events, start=1)]


# -- import_usage_file: chunks, row numbers, the report -----------------------------------------

class FakeFiles:
    def __init__(self):
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = (body, content_type)

    def get(self, key: str) -> bytes:
        return self.objects[key][0]


class FakeClock:
    def now(self) -> datetime:
        return datetime(2025, 3, 20, tzinfo=UTC)


class FakePorts:
    clock = FakeClock()


@pytest.fixture
def batches(monkeypatch) -> list[list[dict]]:
    """`usage.ingest` stand-in: stores transaction ids, rejects a timestamp that is not 2025."""
    seen: set[str] = set()
    calls: list[list[dict]] = []

    def ingest(ports, actor, raw_events, param="events"):
        assert param == "rows" and len(raw_events) <= usage.MAX_BATCH
        actor.require("usage:write")
        calls.append(raw_events)
        result = usage.IngestResult()
        for index, raw in enumerate(raw_events):
            if not raw.get("timestamp", "").startswith("2025"):
                result.rejected.append({"index": index, "param": f"{param}[{index}].timestamp", "message": "bad"})
            elif raw["transaction_id"] in seen:
                result.duplicates += 1
            else:
                seen.add(raw["transaction_id"])
                result.accepted += 1
        return result

    monkeypatch.setattr(usage_import.usage, "ingest", ingest)
    return calls


def csv_file(count: int, bad_every: int = 0) -> bytes:
    lines = [HEADER]
    for n in range(count):
        when = "2024-12-31T00:00:00Z" if bad_every and n % bad_every == 0 else "2025-03-02T10:00:00Z"
        lines.append(f"t-{n},API-1,api_calls,{when},1,")
    return ("\n".join(lines) + "\n").encode()


def test_a_file_goes_through_ingest_1000_rows_at_a_time_and_rejections_name_their_line(batches):
    files = FakeFiles()
    report = import_usage_file(FakePorts(), ACTOR, "incoming/march.csv", csv_file(2500, bad_every=1000), files=files)
    assert [len(b) for b in batches] == [1000, 1000, 500]
    # rows t-0, t-1000, t-2000 are bad: lines 2, 1002, 2002 (the header is line 1)
    assert [(r["row"], r["field"], r["param"]) for r in report["rejected"]] == [
        (2, "timestamp", "rows[2].timestamp"), (1002, "timestamp", "rows[1002].timestamp"),
        (2002, "timestamp", "rows[2002].timestamp")]
    assert (report["rows"], report["accepted"], report["duplicates"], report["rejected_count"]) == (2500, 2497, 0, 3)
    body, content_type = files.objects["results/incoming/march.csv.json"]
    assert json.loads(body) == report and content_type == "application/json"
    assert report["imported_at"] == "2025-03-20T00:00:00Z" and report["error"] is None


def test_a_dropped_again_file_is_all_duplicates(batches):
    files = FakeFiles()
    import_usage_file(FakePorts(), ACTOR, "incoming/a.csv", csv_file(10), files=files)
    again = import_usage_file(FakePorts(), ACTOR, "incoming/a.csv", csv_file(10), files=files)
    assert (again["accepted"], again["duplicates"]) == (0, 10)


def test_parse_rejections_and_ingest_rejections_come_out_in_line_order(batches):
    text = (f"{HEADER}\nt-1,API-1,api_calls,2024-01-01T00:00:00Z,1,\nt-2,API-1\n"
            "t-3,API-1,api_calls,2025-03-02T10:00:00Z,1,\n")
    report = import_usage_file(FakePorts(), ACTOR, "incoming/b.csv", text.encode(), files=FakeFiles())
    assert [r["param"] for r in report["rejected"]] == ["rows[2].timestamp", "rows[3]"]
    assert report["accepted"] == 1


@pytest.mark.parametrize(("key", "body", "param"), [
    ("incoming/usage.xlsx", b"PK\x03\x04", "file"),
    ("incoming/usage.csv", b"\xff\xfe\x00t", "file"),
    ("incoming/usage.csv", b"id,when\n1,2\n", "header[0]"),
])
def test_a_malformed_file_gets_a_report_naming_the_problem(batches, key, body, param):
    files = FakeFiles()
    report = import_usage_file(FakePorts(), ACTOR, key, body, files=files)
    assert report["error"]["param"] == param and report["error"]["message"]
    assert (report["rows"], report["accepted"], batches) == (0, 0, [])
    assert json.loads(files.objects[report_key(key)][0])["error"] == report["error"]


def test_rows_before_a_mid_file_csv_error_are_kept(batches):
    body = csv_file(3) + b'"t-x"y,API-1\n'
    report = import_usage_file(FakePorts(), ACTOR, "incoming/c.csv", body, files=FakeFiles())
    assert report["accepted"] == 3 and report["error"]["param"] == "rows[5]"


def test_a_role_that_may_not_write_usage_is_refused_before_anything_is_read(batches):
    files = FakeFiles()
    with pytest.raises(PermissionDeniedError):
        import_usage_file(FakePorts(), Actor("test", "finance"), "incoming/a.csv", csv_file(1), files=files)
    assert files.objects == {} and batches == []


def test_the_report_lists_the_first_rejections_by_line_and_counts_them_all(batches, monkeypatch):
    monkeypatch.setattr(usage_import, "MAX_LISTED_REJECTIONS", 3)
    lines = [HEADER]
    for n in range(40):  # lines 2..41: odd lines lack fields (parse), even ones a 2025 timestamp (ingest)
        lines.append(f"t-{n},API-1" if n % 2 else f"t-{n},API-1,api_calls,2024-01-01T00:00:00Z,1,")
    report = import_usage_file(FakePorts(), ACTOR, "incoming/d.csv", "\n".join(lines).encode(), files=FakeFiles())
    assert [r["param"] for r in report["rejected"]] == ["rows[2].timestamp", "rows[3]", "rows[4].timestamp"]
    assert report["rejected_count"] == 40
