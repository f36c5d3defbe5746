"""Reference data: the daily copy of ECB's euro reference rates that invoices take their rate from.

`fx_rates_fetch` runs on business days at 16:30 Frankfurt time (ECB publishes around 16:00 CET),
reads ECB's full history (eurofxref-hist.zip), checks that it parses and replaces
`s3://<ExportsBucket>/fx/ecb/eurofxref-hist.zip`. The functions that issue invoices (`api` for
previews, `billrun_invoice_account`) read that object; until it exists they use the snapshot
packaged with the code, and a rate older than five ECB days is refused either way.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.schedules import lambda_schedule
from stacks.function_factory import FunctionFactory

FUNCTION = "fx_rates_fetch"
RATES_KEY = "fx/ecb/eurofxref-hist.zip"  # shared.adapters.fx_rates.DEFAULT_S3_KEY
SCHEDULE_EXPRESSION = "cron(30 16 ? * MON-FRI *)"
SCHEDULE_TIMEZONE = "Europe/Berlin"


class ReferenceRates(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, factory: FunctionFactory,
                 exports_bucket: s3.IBucket, readers: list[lambda_.IFunction]) -> None:
        super().__init__(scope, construct_id)
        self.function = factory.function(self, FUNCTION)
        rates_object = exports_bucket.arn_for_objects(RATES_KEY)
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[rates_object]))
        for reader in readers:
            reader.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[rates_object]))
        self.schedule = lambda_schedule(
            self, "DailyExchangeRates", function=self.function, expression=SCHEDULE_EXPRESSION,
            timezone=SCHEDULE_TIMEZONE, payload={"source": "schedule"}, max_retries=3,
            description="Copies ECB's reference rates after their publication, on business days")
