"""Who may reach what: NetworkPolicies on by default, and the `helm test` pods."""

from __future__ import annotations

import pytest

TARGETING_CLIENT = {
    "if": [
        {"==": [{"var": "targetingKey"}, "framegate-helm-test"]},
        "on",
        {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]},
    ]
}


def component_labels(rendered, component: str) -> dict[str, str]:
    return rendered.workload(component)["spec"]["template"]["metadata"]["labels"]


def pod_labels(rendered, suffix: str) -> dict[str, str]:
    return rendered.named("Pod", suffix)["metadata"]["labels"]


def selects(peer: dict, labels: dict[str, str]) -> bool:
    """Whether a same-namespace podSelector peer selects pods with these labels."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    selector = peer.get("podSelector", {})
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def allowed(policy: dict, labels: dict[str, str], port: str) -> bool:
    """Whether the policy lets a same-namespace pod with these labels in on a named port."""
    for rule in policy["spec"].get("ingress", []):
        if not any(p["port"] == port for p in rule.get("ports", [])):
            continue
        peers = rule.get("from")
        if peers is None or any(selects(peer, labels) for peer in peers):
            return True
    return False


# --- NetworkPolicies ------------------------------------------------------------------------


def test_network_policies_are_on_by_default(render):
    rendered = render("defaults")

    names = {p["metadata"]["name"] for p in rendered.of_kind("NetworkPolicy")}
    assert {"fg-framegate-gateway", "fg-framegate-jobs", "fg-framegate-triton"} <= names


@pytest.mark.parametrize("port", ["http", "grpc"])
def test_only_gateway_and_jobs_reach_triton_api(render, port):
    """Triton's HTTP/gRPC API is unauthenticated (model control, logging settings)."""
    rendered = render("defaults", {"guard": {"enabled": True}})
    policy = rendered.named("NetworkPolicy", "triton")

    assert allowed(policy, component_labels(rendered, "gateway"), port)
    assert allowed(policy, component_labels(rendered, "jobs"), port)
    assert not allowed(policy, component_labels(rendered, "guard"), port)
    assert not allowed(policy, pod_labels(rendered, "test-verify"), port)
    assert not allowed(policy, {"app": "anything-else"}, port)


def test_guard_reaches_gateway_metrics_when_ingress_is_restricted(render):
    rendered = render("observability", {"guard": {"enabled": True}})
    policy = rendered.named("NetworkPolicy", "gateway")

    assert allowed(policy, component_labels(rendered, "guard"), "http")
    assert allowed(policy, pod_labels(rendered, "test-verify"), "http")
    assert not allowed(policy, {"app": "anything-else"}, "http")


def test_jobs_test_pod_reaches_jobs_when_ingress_is_restricted(render):
    rendered = render("observability")
    policy = rendered.named("NetworkPolicy", "jobs")

    assert allowed(policy, pod_labels(rendered, "test-verify-jobs"), "http")
    assert not allowed(policy, {"app": "anything-else"}, "http")


def test_network_policies_can_be_turned_off(render):
    assert render(overrides={"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []


# --- helm test ---------------------------------------------------------------------------------


def verify_command(rendered, suffix: str = "test-verify") -> list[str]:
    return rendered.named("Pod", suffix)["spec"]["containers"][0]["command"]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_helm_test_sends_a_fixed_client_id(render):
    """Without one every handshake gets a random targeting key, so during a fractional rollout the
    test's streaming state is a coin toss."""
    command = verify_command(render("defaults"))

    assert option(command, "--client-id") == "framegate-helm-test"


def test_fractional_rollout_expects_either_state(render):
    """The chart cannot evaluate a targeting rule: with one, either state passes unless
    tests.expectStreaming says otherwise."""
    assert option(verify_command(render("targeting")), "--expect-streaming") == "any"


def test_targeting_that_names_the_test_client_can_be_expected_on(render):
    rendered = render(
        "targeting",
        {
            "flags": {"videoStreaming": {"targeting": TARGETING_CLIENT}},
            "tests": {"expectStreaming": "on"},
        },
    )
    command = verify_command(rendered)

    assert option(command, "--expect-streaming") == "on"
    assert option(command, "--client-id") == "framegate-helm-test"


def test_helm_test_checks_the_jobs_service(render):
    rendered = render("defaults")
    command = verify_command(rendered, "test-verify-jobs")
    pod = rendered.named("Pod", "test-verify-jobs")

    assert command[:4] == ["framegate", "verify", "--url", "http://fg-framegate-jobs:80"]
    assert "--require-jobs" in command
    assert option(command, "--expect-streaming") == "off"  # ROLE=jobs mounts no WebSocket router
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_no_jobs_test_pod_without_jobs(render):
    assert render("jobs-disabled").find("Pod", "test-verify-jobs") is None
