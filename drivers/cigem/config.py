"""CIGEM settings: a device's `transport` table and the `[cigem]` section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from drivers.link.config import Model, Name, TransportModel, unknown_metrics


class CigemTransport(TransportModel):
    """A CIGEM universal geohazard device: `sensors` maps `L1_LF_1` or `L1_QJ_1.X` to metrics."""

    kind: Literal["cigem"]
    dev_id: str = Field(min_length=1, max_length=64)
    sensors: dict[str, Name] = Field(min_length=1)


class CigemSection(Model):
    topic: str = "$dp"
    # commands: published to this topic ({dev_id}, {id}: the queue's command id); the
    # device's answers come on `answer_topic`, or on `answer_topic/<devId>`
    command_topic: str = Field(default="$creq/{dev_id}/{id}", min_length=1)
    answer_topic: str = Field(default="$dr", min_length=1)


def problems(
    where: str, t: TransportModel, metrics: set[str], ports: Mapping[str, str]
) -> list[str]:
    assert isinstance(t, CigemTransport)
    return unknown_metrics(f"{where}.sensors", t.sensors, metrics)
