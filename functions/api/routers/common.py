"""What every router shares: the caller, the ports, pagination."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from shared.services.context import Actor, Ports

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="page size (1-100)")]
StartingAfter = Annotated[str | None, Query(description="id of the last object of the previous page")]


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool


def actor(app) -> Actor:
    return app.context["actor"]


def ports(app) -> Ports:
    return app.context["ports"]
