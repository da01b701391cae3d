"""Graceful shutdown in the chart: the readiness probe asks what the pod itself can do (issue 12),
and the grace period and preStop hook follow SHUTDOWN_TIMEOUT_S (issue 11)."""

from __future__ import annotations

import helm_python
import pytest

API_PODS = ("gateway", "jobs")
EXIT_MARGIN_S = 5  # the chart's allowance for the process to exit after its drain


def pod_spec(rendered, component: str) -> dict:
    return rendered.workload(component)["spec"]["template"]["spec"]


@pytest.mark.parametrize("component", API_PODS)
def test_readiness_probe_is_pod_scoped(render, component) -> None:
    container = render("defaults").container(component)

    assert container["readinessProbe"]["httpGet"] == {"path": "/ready?scope=pod", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize(
    ("overrides", "grace", "pre_stop"),
    [
        ({}, {"gateway": 5 + 10 + EXIT_MARGIN_S, "jobs": 10 + EXIT_MARGIN_S}, {"gateway": 5}),
        (
            {"shutdown": {"timeoutSeconds": 30}, "gateway": {"preStopSleepSeconds": 8}},
            {"gateway": 8 + 30 + EXIT_MARGIN_S, "jobs": 30 + EXIT_MARGIN_S},
            {"gateway": 8},
        ),
        (
            {"gateway": {"preStopSleepSeconds": 0}, "jobs": {"preStopSleepSeconds": 3}},
            {"gateway": 10 + EXIT_MARGIN_S, "jobs": 3 + 10 + EXIT_MARGIN_S},
            {"jobs": 3},
        ),
    ],
    ids=["defaults", "longer-drain", "prestop-on-jobs-only"],
)
def test_grace_period_and_prestop_follow_shutdown_timeout(
    render, overrides, grace, pre_stop
) -> None:
    rendered = render(None, overrides)
    timeout = overrides.get("shutdown", {}).get("timeoutSeconds", 10)

    for component in API_PODS:
        pod = pod_spec(rendered, component)
        assert pod["terminationGracePeriodSeconds"] == grace[component], component
        assert rendered.env(component)["SHUTDOWN_TIMEOUT_S"] == str(timeout), component
        lifecycle = pod["containers"][0].get("lifecycle")
        if component in pre_stop:
            command = ["sleep", str(pre_stop[component])]
            assert lifecycle == {"preStop": {"exec": {"command": command}}}, component
        else:
            assert lifecycle is None, component


def test_grace_period_covers_prestop_and_drain_in_every_case(render, case) -> None:
    rendered = render(case)
    for component in API_PODS:
        if rendered.find("Deployment", component) is None:
            continue  # jobs disabled
        pod = pod_spec(rendered, component)
        container = pod["containers"][0]
        drain = float(rendered.env(component)["SHUTDOWN_TIMEOUT_S"])
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
        pre_stop = int(sleep["command"][1]) if sleep else 0
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + EXIT_MARGIN_S


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"shutdown": {"timeoutSeconds": 0}}, "timeoutSeconds"),
        ({"shutdown": {"timeoutSeconds": "10"}}, "timeoutSeconds"),
        ({"jobs": {"preStopSleepSeconds": -1}}, "preStopSleepSeconds"),
        # derived now: a fixed value could fall short of the drain
        ({"gateway": {"terminationGracePeriodSeconds": 30}}, "terminationGracePeriodSeconds"),
    ],
    ids=["zero-timeout", "timeout-type", "negative-prestop", "fixed-grace-period"],
)
def test_schema_rejects_bad_shutdown_values(chart, values, message) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=message):
        chart.render(values, name="fg")
