"""The KPL's metrics settings, by name from Python, reach CloudWatch (kpl-sim)."""

from __future__ import annotations

import time
from typing import Any, Dict, List

import kpl
from conftest import Sim


def datums(sim: Sim, namespace: str) -> List[Dict[str, Any]]:
    return [
        d
        for r in sim.cloudwatch()["requests"]
        if r["namespace"] == namespace
        for d in r["metric_data"]
    ]


def dims(d: Dict[str, Any]) -> Dict[str, str]:
    return {x["Name"]: x["Value"] for x in d.get("Dimensions", [])}


def test_metrics_settings_by_kpl_name_shape_the_upload(sim: Sim) -> None:
    stream = sim.new_stream(2)
    namespace = f"Py/{stream}"
    settings = sim.config(
        stream,
        MetricsLevel="summary",
        metrics_granularity="stream",
        metricsNamespace=namespace,
        metrics_upload_delay=100,
        additional_metrics_dimensions="Lang=python",
    )
    with kpl.Producer(**settings) as producer:
        for f in producer.put_many([(f"k{i}", b"x" * 10) for i in range(300)]):
            f.result(timeout=30)
    deadline = time.monotonic() + 20
    put = 0.0
    while time.monotonic() < deadline:
        got = datums(sim, namespace)
        put = sum(
            d["StatisticValues"]["Sum"]
            for d in got
            if d["MetricName"] == "UserRecordsPut" and dims(d) == {"Lang": "python", "StreamName": stream}
        )
        if put >= 300:
            break
        time.sleep(0.1)
    assert put == 300
    assert {d["MetricName"] for d in got} <= {
        "UserRecordsPut",
        "KinesisRecordsPut",
        "ErrorsByCode",
        "AllErrors",
        "UserRecordExpired",
        "BufferingTime",
    }
    assert all("ShardId" not in dims(d) for d in got)
