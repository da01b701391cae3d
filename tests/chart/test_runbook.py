"""docs/ROLLBACK.md's commands, checked against the chart they operate: every helm and kubectl
command in its bash blocks names objects the chart renders, values paths values.yaml has (its
`--set` values render through the strict schema) and flags of the Helm version it claims; every
`framegate` command parses with the real CLI."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import helm_python
import pytest
import typer.main

from api.cli.main import app

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "ROLLBACK.md"
HELM_VERSIONS = frozenset({3, 4})

# Flags of the helm subcommands the runbook uses, by Helm major version (`helm <cmd> --help` of
# Helm 3.14+ and 4.0, global flags included). Helm 4 renamed --atomic to --rollback-on-failure and
# --force to --force-replace, and added server-side apply (--server-side, --force-conflicts).
GLOBAL = {"--namespace", "-n", "--kube-context", "--kubeconfig", "--debug"}
UPGRADE_COMMON = {
    "--version", "--values", "-f", "--set", "--set-string", "--set-json", "--set-file",
    "--reuse-values", "--reset-values", "--reset-then-reuse-values", "--wait", "--wait-for-jobs",
    "--timeout", "--install", "--dry-run", "--cleanup-on-fail", "--history-max", "--description",
    "--devel", "--repo", "--no-hooks", "--skip-crds", "--take-ownership",
}  # fmt: skip
ROLLBACK_COMMON = {"--wait", "--wait-for-jobs", "--timeout", "--cleanup-on-fail", "--dry-run",
                   "--history-max", "--no-hooks"}  # fmt: skip
FLAGS: dict[int, dict[str, set[str]]] = {
    3: {
        "upgrade": UPGRADE_COMMON | {"--atomic", "--force"},
        "rollback": ROLLBACK_COMMON | {"--force", "--recreate-pods"},
    },
    4: {
        "upgrade": UPGRADE_COMMON
        | {"--rollback-on-failure", "--force-replace", "--server-side", "--force-conflicts"},
        "rollback": ROLLBACK_COMMON | {"--force-replace", "--server-side", "--force-conflicts"},
    },
}
for _version in HELM_VERSIONS:
    FLAGS[_version] |= {
        "history": {"--max", "--output", "-o"},
        "get values": {"--revision", "--all", "-a", "--output", "-o"},
        "get metadata": {"--revision", "--output", "-o"},
        "test": {"--logs", "--timeout", "--filter"},
        "show chart": {"--version", "--repo", "--devel"},
    }
# `helm get metadata -o json` fields (both versions).
METADATA_FIELDS = {"name", "chart", "version", "appVersion", "namespace", "revision", "status",
                   "deployedAt", "annotations", "dependencies"}  # fmt: skip
VALUE_OPTIONS = {"--set", "--version", "--values", "-f", "--timeout", "--revision", "--output",
                 "-o", "--namespace", "-n", "--max", "--filter", "--type", "-p", "--patch-file",
                 "--field-selector", "--selector", "-l", "--for", "--from-literal"}  # fmt: skip


@dataclass(frozen=True)
class Command:
    """One helm/kubectl/framegate/jq invocation of a bash block, with the Helm versions the block
    says it is for and the command it reads its input from (a pipeline's previous stage)."""

    argv: tuple[str, ...]
    versions: frozenset[int]
    upstream: tuple[str, ...] | None
    line: str


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def logical_lines(block: str) -> list[tuple[str, frozenset[int]]]:
    """Lines of a block with their continuations joined, each tagged with its Helm versions: a
    `# Helm 3` / `# Helm 4` comment applies to the lines after it, up to the next such comment."""
    out: list[tuple[str, frozenset[int]]] = []
    versions = HELM_VERSIONS
    for line in block.replace("\\\n", " ").splitlines():
        marker = re.fullmatch(r"\s*# Helm (\d)\s*", line)
        if marker:
            versions = frozenset({int(marker.group(1))})
            continue
        if line.strip() and not line.strip().startswith("#"):
            out.append((line.strip(), versions))
    return out


def commands(text: str) -> list[Command]:
    found: list[Command] = []
    for block in bash_blocks(text):
        for line, versions in logical_lines(block):
            # A $(...) substitution is a pipeline of its own.
            parts = [*re.findall(r"\$\(([^)]*)\)", line), re.sub(r"\$\([^)]*\)", "SUBST", line)]
            for part in parts:
                part = re.sub(r"<(\w+)>", r"\1", part)  # <revision> placeholders
                lexer = shlex.shlex(part, posix=True, punctuation_chars="|&;>")
                lexer.whitespace_split = True
                tokens = list(lexer)
                stages, current = [], []
                for token in tokens:
                    if token in ("|", "&&", ";", "&", ">"):
                        stages.append(current)
                        current = [] if token != ">" else ["REDIRECT"]
                    else:
                        current.append(token)
                stages.append(current)
                upstream = None
                for stage in stages:
                    argv = stage[1:] if stage and stage[0] == "export" else stage
                    if argv and "=" in argv[0] and not argv[0].startswith("-"):
                        argv = argv[1:]  # VAR=value prefix
                    if argv and argv[0] in ("helm", "kubectl", "framegate", "jq"):
                        found.append(Command(tuple(argv), versions, upstream, line))
                    upstream = tuple(argv) if argv else upstream
    return found


RUNBOOK_COMMANDS = commands(RUNBOOK.read_text())


def of(tool: str) -> list[Command]:
    return [c for c in RUNBOOK_COMMANDS if c.argv[0] == tool]


def ids(found: list[Command]) -> list[str]:
    return [" ".join(c.argv)[:70] for c in found]


def exports(text: str) -> dict[str, str]:
    """The runbook's `export NAME=value` variables, expanded in order."""
    env: dict[str, str] = {}
    for name, value in re.findall(r"^export (\w+)=(\S+)", text, flags=re.M):
        if not value.startswith("$("):
            env[name] = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), value)
    return env


ENV = exports(RUNBOOK.read_text())


def expand(word: str) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: ENV.get(m.group(1), m.group(0)), word)


def positional(argv: tuple[str, ...]) -> list[str]:
    """Words that are neither options nor an option's value."""
    words, skip = [], False
    for word in argv[1:]:
        if skip:
            skip = False
        elif word in VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return words


def helm_subcommand(argv: tuple[str, ...]) -> tuple[str, list[str]]:
    words = positional(argv)
    first = words[0] if words else ""
    name = f"{first} {words[1]}" if first in ("get", "show") else first
    return name, [w for w in argv[1:] if w.startswith("-")]


def option_values(argv: tuple[str, ...], name: str) -> list[str]:
    values = []
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif word.startswith(f"{name}="):
            values.append(word.split("=", 1)[1])
    return values


def jq_paths(program: str) -> list[list[str]]:
    """The `.a.b.c` paths a jq program reads (strings and the `// {}` default skipped)."""
    program = re.sub(r'"[^"]*"', "", program)
    return [p.split(".")[1:] for p in re.findall(r"(?<![\w\]])(\.[A-Za-z_][\w.]*)", program)]


def has_path(values: object, path: list[str]) -> bool:
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_runbook_has_commands_of_every_kind():
    tools = {c.argv[0] for c in RUNBOOK_COMMANDS}

    assert {"helm", "kubectl", "framegate", "jq"} <= tools
    assert {helm_subcommand(c.argv)[0] for c in of("helm")} >= {
        "upgrade",
        "rollback",
        "history",
        "get values",
        "get metadata",
        "test",
    }


@pytest.mark.parametrize("command", of("helm"), ids=ids(of("helm")))
def test_helm_flags_exist_in_the_claimed_versions(command):
    name, flags = helm_subcommand(command.argv)
    assert name in FLAGS[3], f"unknown helm subcommand {name!r}: {command.line}"
    for version in command.versions:
        known = FLAGS[version][name] | GLOBAL
        unknown = [f for f in flags if f.split("=", 1)[0] not in known]
        assert unknown == [], f"Helm {version} has no {unknown} for `helm {name}`: {command.line}"


def test_helm_4_only_flags_are_marked_helm_4():
    for command in of("helm"):
        _name, flags = helm_subcommand(command.argv)
        if {f.split("=", 1)[0] for f in flags} & {"--force-conflicts", "--server-side"}:
            assert command.versions == {4}, command.line


def test_every_version_specific_upgrade_has_its_counterpart():
    """A `# Helm 3` upgrade or rollback comes with a `# Helm 4` one and the other way round."""
    specific = [c for c in of("helm") if len(c.versions) == 1]
    for version in HELM_VERSIONS:
        count = sum(1 for c in specific if c.versions == {version})
        assert count == len(specific) / 2, [c.line for c in specific]


@pytest.mark.parametrize(
    "command",
    [c for c in of("helm") if helm_subcommand(c.argv)[0] == "upgrade"],
    ids=ids([c for c in of("helm") if helm_subcommand(c.argv)[0] == "upgrade"]),
)
def test_upgrades_are_pinned_to_the_deployed_chart(command, chart):
    """No --reuse-values from whatever chart is checked out: the deployed chart version and the
    release's own values, and every --set renders through the strict schema."""
    argv = command.argv
    words = positional(argv)
    assert "--reuse-values" not in argv, command.line
    assert option_values(argv, "--version") == ["$CHART_VERSION"], command.line
    assert option_values(argv, "-f") == ["/tmp/fg-values.json"], command.line
    assert "$CHART" in words and "helm/framegate" not in words, command.line

    values: dict = {}
    for expression in option_values(argv, "--set"):
        parsed = helm_python.parse_set_string(expression)
        (key,) = expression.split("=", 1)[:1]
        assert has_path(chart.values, key.split(".")), f"{key} is not in values.yaml"
        values = deep_merge(values, parsed)
    assert values, command.line
    chart.render(values, name="fg")  # the strict schema accepts the override


def deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_values_are_read_as_json_never_grepped():
    """`helm get values` prints keys alphabetically: a grep -A3 after `flags:` never reaches
    flags.provider or flags.videoStreaming."""
    for command in of("helm"):
        if helm_subcommand(command.argv)[0] == "get values":
            assert option_values(command.argv, "-o") == ["json"], command.line
    assert not re.search(r"get values[^\n]*\| *grep", RUNBOOK.read_text())


@pytest.mark.parametrize("command", of("jq"), ids=ids(of("jq")))
def test_jq_paths_exist(command, chart):
    upstream = command.upstream
    program = next(w for w in command.argv[1:] if not w.startswith("-"))
    if upstream is None or upstream[0] != "helm":
        return  # jq over kubectl output: checked with the kubectl commands
    source = helm_subcommand(upstream)[0]
    for path in jq_paths(program):
        if source == "get values":
            assert has_path(chart.values, path), f"{'.'.join(path)} is not in values.yaml"
        else:
            assert source == "get metadata", command.line
            assert path[0] in METADATA_FIELDS, f"helm get metadata has no .{path[0]}"


def test_jq_reads_the_flag_paths_the_runbook_needs(chart):
    paths = {".".join(p) for c in of("jq") for p in jq_paths(c.argv[1])}

    assert {
        "flags.provider",
        "openFeatureOperator.enabled",
        "flags.videoStreaming.enabled",
    } <= paths
    assert "streaming.enabled" in paths


# --- kubectl -------------------------------------------------------------------------------------

KINDS = {
    "configmap": "ConfigMap",
    "featureflag": "FeatureFlag",
    "deployment": "Deployment",
    "deploy": "Deployment",
    "svc": "Service",
    "pvc": "PersistentVolumeClaim",
    "pods": "Pod",
}


def kubectl_targets(argv: tuple[str, ...]) -> list[tuple[str, str]]:
    """(kind, name) pairs a kubectl command names: `kind name` or `kind/name`."""
    words = [expand(w) for w in positional(argv)]
    targets = []
    for i, word in enumerate(words[1:], start=1):
        kind, _, name = word.partition("/")
        if kind in KINDS and name:
            targets.append((KINDS[kind], name))
        elif word in KINDS and i + 1 < len(words) and "/" not in words[i + 1]:
            targets.append((KINDS[word], words[i + 1]))
    return targets


@pytest.mark.parametrize("command", of("kubectl"), ids=ids(of("kubectl")))
def test_kubectl_names_objects_the_chart_renders(command, render):
    rendered = [
        render("defaults", {"guard": {"enabled": True}}),
        render("ofo", {"guard": {"enabled": True}}),
    ]
    names = {(o["kind"], o["metadata"]["name"]) for r in rendered for o in r.objects}
    for kind, name in kubectl_targets(command.argv):
        assert (kind, name) in names, f"the chart renders no {kind} {name}: {command.line}"


def test_kubectl_patches_touch_fields_the_objects_have(render):
    """A merge patch of the FeatureFlag or PVC must address fields the rendered object has."""
    for command in of("kubectl"):
        if "patch" not in command.argv or "-p" not in command.argv:
            continue
        ((kind, name),) = kubectl_targets(command.argv)
        case = "ofo" if kind == "FeatureFlag" else "defaults"
        obj = next(
            o for o in render(case).objects if o["metadata"]["name"] == name and o["kind"] == kind
        )
        patch = json.loads(option_values(command.argv, "-p")[0])
        assert_fields_exist(obj, patch, command.line)


def assert_fields_exist(obj: dict, patch: dict, line: str) -> None:
    for key, value in patch.items():
        if value is None:
            continue  # deleting an optional field
        assert key in obj, f"{key} is not a field of the rendered object: {line}"
        if isinstance(value, dict) and isinstance(obj[key], dict):
            assert_fields_exist(obj[key], value, line)


def test_runbook_names_are_the_chart_names():
    assert ENV["GW"] == "fg-framegate-gateway"
    assert ENV["CM"] == "fg-framegate-flags"
    assert ENV["PVC"] == "fg-framegate-data"


# --- framegate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", of("framegate"), ids=ids(of("framegate")))
def test_framegate_commands_parse(command):
    """Options and subcommands the real CLI accepts (parsed, not run: they need a cluster)."""
    cmd: click.Command = typer.main.get_command(app)
    args = [expand(a) for a in command.argv[1:]]
    parent = None
    name = "framegate"
    while isinstance(cmd, click.Group) and args and args[0] in cmd.commands:
        parent = click.Context(cmd, info_name=name, parent=parent)
        name, cmd, args = args[0], cmd.commands[args[0]], args[1:]
    try:
        cmd.make_context(name, list(args), parent=parent)
    except click.UsageError as exc:
        pytest.fail(f"{command.line}: {exc}")
