#!/usr/bin/python3
"""tests/deploy/k8s_check.py: the rules deploy/k8s must keep, checked without a
cluster (Debian's /usr/bin/python3 with python3-yaml).

    k8s_check.py [--dir deploy/k8s] [--render OUT.json] [--self-test]

Builds the objects the way `kubectl apply -k` would for this kustomization
(its resources, namespace and images; nothing else is used, and anything
else in kustomization.yaml is an error), then checks what a schema cannot:
probes (on the admin port) and Prometheus' scrape annotations (on it too),
the preStop drain against the node's SIGTERM settings, the grace
period, resources against docker-compose.yml's CPU share, the non-root
security context, that the HorizontalPodAutoscaler, PodDisruptionBudget and
Service select the node pods (and not the migration Job's), that the Service
and the Ingress expose the public port only, that the Job
runs `shoal-node migrate` while the nodes run with --migrate=false, the
Secret's example values, and TLS at the Ingress. --render writes the built
objects as JSON for the schema check (k8s_schema.mjs). --self-test breaks
the manifests in memory, one rule at a time, and fails unless every break
is caught.
"""
import argparse
import copy
import json
import math
import os
import re
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KUSTOMIZE_KEYS = {"apiVersion", "kind", "namespace", "resources", "images"}
CLUSTER_SCOPED = {"Namespace"}


def load_kustomization(directory):
    """The objects `kubectl apply -k directory` would send."""
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - KUSTOMIZE_KEYS
    if unknown:
        raise ValueError("kustomization.yaml uses %s, which this checker does not model" % sorted(unknown))
    objects, files = [], []
    for resource in k.get("resources", []):
        path = os.path.join(directory, resource)
        files.append(os.path.normpath(path))
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    doc["__file"] = resource
                    objects.append(doc)
    images = {i["name"]: i for i in k.get("images", [])}
    for o in objects:
        if k.get("namespace") and o.get("kind") not in CLUSTER_SCOPED:
            o.setdefault("metadata", {})["namespace"] = k["namespace"]
        for c in pod_containers(o):
            name, _, tag = c.get("image", "").partition(":")
            if name in images:
                i = images[name]
                c["image"] = i.get("newName", name) + ":" + str(i.get("newTag", tag or "latest"))
    return k, objects, files


def pod_spec(o):
    return (o.get("spec") or {}).get("template", {}).get("spec") or {}


def pod_containers(o):
    return pod_spec(o).get("containers") or []


def selects(selector, labels):
    """A matchLabels selector (the only kind used here) against pod labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def compose_facts():
    with open(os.path.join(REPO, "docker-compose.yml")) as f:
        c = yaml.safe_load(f)
    cpus = float(c["services"]["node"]["cpus"])
    pg = " ".join(map(str, c["services"]["postgres"]["command"]))
    max_connections = int(re.search(r"max_connections=(\d+)", pg).group(1))
    with open(os.path.join(REPO, "deploy", "Dockerfile")) as f:
        users = re.findall(r"^USER\s+(\d+)", f.read(), re.M)
    return cpus, max_connections, int(users[-1]) if users else None


def cpu_cores(value):
    text = str(value)
    return int(text[:-1]) / 1000.0 if text.endswith("m") else float(text)


def check(objects, report):
    """Calls report(ok, what) for each rule; returns the failures."""
    failures = []

    def rule(ok, what):
        ok = bool(ok)
        report(ok, what)
        if not ok:
            failures.append(what)
        return ok

    by_kind = {}
    for o in objects:
        by_kind.setdefault(o.get("kind"), []).append(o)
    wanted = ["Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service",
              "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress"]
    for kind in wanted:
        rule(len(by_kind.get(kind, [])) == 1, "exactly one %s" % kind)
    if any(len(by_kind.get(kind, [])) != 1 for kind in wanted):
        return failures
    (deployment,) = by_kind["Deployment"]
    (job,) = by_kind["Job"]
    (service,) = by_kind["Service"]
    (hpa,) = by_kind["HorizontalPodAutoscaler"]
    (pdb,) = by_kind["PodDisruptionBudget"]
    (configmap,) = by_kind["ConfigMap"]
    (secret,) = by_kind["Secret"]
    (ingress,) = by_kind["Ingress"]
    (namespace,) = by_kind["Namespace"]
    settings = configmap.get("data") or {}
    secret_data = secret.get("stringData") or {}
    cpus, max_connections, image_uid = compose_facts()

    rule(all(o.get("metadata", {}).get("namespace") == namespace["metadata"]["name"]
             for o in objects if o["kind"] not in CLUSTER_SCOPED),
         "every object is in the namespace %s" % namespace["metadata"]["name"])
    rule(all((o.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/name") == "shoal" for o in objects),
         "every object is labelled app.kubernetes.io/name=shoal")

    # ------------------------------------------------ the node Deployment
    spec = deployment.get("spec") or {}
    pod_labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
    job_labels = (job.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels") or {}
    node_selector = (spec.get("selector") or {}).get("matchLabels") or {}
    rule(selects(node_selector, pod_labels), "Deployment selector matches its pod labels")
    rule("replicas" not in spec, "Deployment leaves replicas to the HorizontalPodAutoscaler")
    containers = pod_containers(deployment)
    rule(len(containers) == 1, "Deployment runs one container")
    node = containers[0] if containers else {}
    ports = {p.get("name"): p.get("containerPort") for p in node.get("ports") or []}
    public_port, admin_port = settings.get("SHOAL_PORT"), settings.get("SHOAL_ADMIN_PORT")
    rule(str(ports.get("http")) == str(public_port),
         "the container port named http is the ConfigMap's SHOAL_PORT (%s)" % public_port)
    rule(str(ports.get("admin")) == str(admin_port) and str(admin_port) != str(public_port),
         "the container port named admin is the ConfigMap's SHOAL_ADMIN_PORT (%s), not SHOAL_PORT" % admin_port)
    rule(settings.get("SHOAL_BIND") == "0.0.0.0", "ConfigMap binds the node to 0.0.0.0")
    args = node.get("args") or []
    rule(node.get("command") is None and args[:1] == ["serve"],
         "node container runs the image's entrypoint with `serve`")
    rule("--migrate=false" in args and str(settings.get("SHOAL_MIGRATE", "false")).lower() in {"false", "0", "no", "off"},
         "nodes do not migrate at start (--migrate=false)")

    def is_admin(port):
        """port (a name or a number) is the container's admin port."""
        return port is not None and (port == "admin" or str(port) == str(ports.get("admin")))

    def probe_port_ok(probe):
        return is_admin(((probe or {}).get("httpGet") or {}).get("port"))

    readiness = node.get("readinessProbe") or {}
    liveness = node.get("livenessProbe") or {}
    rule((readiness.get("httpGet") or {}).get("path") == "/readyz" and probe_port_ok(readiness),
         "readinessProbe GETs /readyz on the admin port (the public port answers it 404)")
    rule((liveness.get("httpGet") or {}).get("path") == "/healthz" and probe_port_ok(liveness),
         "livenessProbe GETs /healthz on the admin port")
    startup = node.get("startupProbe")
    rule(startup is None or ((startup.get("httpGet") or {}).get("path") == "/healthz" and probe_port_ok(startup)),
         "startupProbe, if any, GETs /healthz on the admin port (it must not depend on the shared tiers)")
    annotations = (spec.get("template", {}).get("metadata") or {}).get("annotations") or {}
    rule(annotations.get("prometheus.io/scrape") == "true" and is_admin(annotations.get("prometheus.io/port"))
         and annotations.get("prometheus.io/path", "/metrics") == "/metrics",
         "pods carry Prometheus scrape annotations for /metrics on the admin port (%s)" % admin_port)

    drain_ms = int(settings.get("SHOAL_DRAIN_DELAY_MS", 5000))
    grace_ms = int(settings.get("SHOAL_GRACE_PERIOD_MS", 10000))
    pre_stop = (((node.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    script = " ".join(pre_stop)
    rule(pre_stop[:2] == ["/bin/sh", "-c"] and re.search(r"\bkill -TERM 1\b", script)
         and "d=$(( ${SHOAL_DRAIN_DELAY_MS:-5000} / 1000 - 1 ))" in script and 'sleep "$d"' in script,
         "preStop starts the node's SIGTERM drain and waits until a second before SHOAL_DRAIN_DELAY_MS ends")
    termination = pod_spec(deployment).get("terminationGracePeriodSeconds", 30)
    rule(termination * 1000 >= drain_ms + grace_ms + 2000,
         "terminationGracePeriodSeconds (%ss) exceeds drain delay + grace period (%d ms) by 2 s or more"
         % (termination, drain_ms + grace_ms))

    resources = node.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    rule({"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits),
         "node container requests and limits cpu and memory")
    rule("cpu" in limits and cpu_cores(limits["cpu"]) == cpus and cpu_cores(requests.get("cpu", 0)) == cpus,
         "node CPU request and limit are docker-compose.yml's cpus (%g)" % cpus)

    def secure(o, who):
        pod = pod_spec(o).get("securityContext") or {}
        for c in pod_containers(o):
            sc = c.get("securityContext") or {}
            uid = sc.get("runAsUser", pod.get("runAsUser"))
            rule((sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True) and uid not in (None, 0)
                 and uid == image_uid,
                 "%s runs as non-root uid %s, the image's USER" % (who, image_uid))
            rule(sc.get("allowPrivilegeEscalation") is False and sc.get("privileged") is not True,
                 "%s forbids privilege escalation" % who)
            rule(sc.get("readOnlyRootFilesystem") is True, "%s has a read-only root filesystem" % who)
            caps = sc.get("capabilities") or {}
            rule(caps.get("drop") == ["ALL"] and not caps.get("add"), "%s drops ALL capabilities" % who)
            refs = {(e.get("configMapRef") or {}).get("name") for e in c.get("envFrom") or []} | \
                   {(e.get("secretRef") or {}).get("name") for e in c.get("envFrom") or []}
            rule({configmap["metadata"]["name"], secret["metadata"]["name"]} <= refs,
                 "%s takes its settings from the ConfigMap and the Secret" % who)
            rule(c.get("image", "").split(":")[0].rsplit("/", 1)[-1] == "shoal-node",
                 "%s runs the shoal-node image" % who)

    secure(deployment, "node container")
    secure(job, "migration container")

    # ------------------------------------------------ migrations
    job_spec = job.get("spec") or {}
    job_containers = pod_containers(job)
    rule(len(job_containers) == 1 and job_containers[0].get("command") is None
         and job_containers[0].get("args") == ["migrate"],
         "Job runs `shoal-node migrate`")
    rule(pod_spec(job).get("restartPolicy") in {"Never", "OnFailure"} and job_spec.get("backoffLimit", 6) >= 1,
         "Job retries a failed migration a bounded number of times")
    rule(not selects(node_selector, job_labels), "Deployment selector does not match the Job's pods")

    # ------------------------------------------------ Service, HPA, PDB
    service_selector = (service.get("spec") or {}).get("selector") or {}
    rule(selects(service_selector, pod_labels), "Service selects the node pods")
    rule(not selects(service_selector, job_labels), "Service does not select the migration Job's pods")
    service_ports = (service.get("spec") or {}).get("ports") or []
    rule(service_ports and all(p.get("targetPort") == "http" or str(p.get("targetPort")) == str(ports.get("http"))
                               for p in service_ports),
         "Service targets the public container port only (never the admin port)")

    hpa_spec = hpa.get("spec") or {}
    target = hpa_spec.get("scaleTargetRef") or {}
    rule(hpa.get("apiVersion") == "autoscaling/v2", "HorizontalPodAutoscaler is autoscaling/v2")
    rule(target.get("apiVersion") == "apps/v1" and target.get("kind") == "Deployment"
         and target.get("name") == deployment["metadata"]["name"],
         "HorizontalPodAutoscaler scales the node Deployment")
    cpu_metrics = [m for m in hpa_spec.get("metrics") or []
                   if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
                   and ((m.get("resource") or {}).get("target") or {}).get("type") == "Utilization"
                   and 0 < ((m.get("resource") or {}).get("target") or {}).get("averageUtilization", 0) <= 100]
    rule(len(cpu_metrics) == 1, "HorizontalPodAutoscaler targets CPU utilisation")
    minimum, maximum = hpa_spec.get("minReplicas", 1), hpa_spec.get("maxReplicas", 0)
    rule(2 <= minimum <= maximum, "HorizontalPodAutoscaler keeps at least 2 nodes")
    # SHOAL_THREADS unset: a worker per CPU of the container's limit, rounded
    # up, as the node counts them (its cgroup quota).
    threads = int(settings.get("SHOAL_THREADS") or 0) or math.ceil(cpu_cores(limits.get("cpu", 1)))
    # Three per worker at most: its pipe, transactions, and the pipe's spill
    # lane while a slow statement stalls it (none with the spill lane off).
    per_worker = 2 if str(settings.get("SHOAL_DATABASE_SPILL_AFTER_MS", "")).strip() == "0" else 3
    rule(maximum * (per_worker * threads + 2) <= max_connections,
         "maxReplicas x (%d x workers (%d) + 2) = %d PostgreSQL connections fit max_connections %d"
         % (per_worker, threads, maximum * (per_worker * threads + 2), max_connections))

    pdb_spec = pdb.get("spec") or {}
    pdb_selector = (pdb_spec.get("selector") or {}).get("matchLabels") or {}
    rule(pdb.get("apiVersion") == "policy/v1", "PodDisruptionBudget is policy/v1")
    rule(selects(pdb_selector, pod_labels) and pdb_selector == node_selector,
         "PodDisruptionBudget selects the Deployment's pods, with its selector")
    rule(not selects(pdb_selector, job_labels), "PodDisruptionBudget does not select the Job's pods")
    rule(("maxUnavailable" in pdb_spec) != ("minAvailable" in pdb_spec)
         and (pdb_spec.get("maxUnavailable", 1) >= 1 and pdb_spec.get("minAvailable", 0) < minimum),
         "PodDisruptionBudget lets one node go at a time, never blocking every eviction")

    # ------------------------------------------------ settings and TLS
    rule(secret.get("type", "Opaque") == "Opaque" and {"DATABASE_URL", "REDIS_URL"} <= set(secret_data),
         "Secret holds DATABASE_URL and REDIS_URL")
    rule(not ({"DATABASE_URL", "REDIS_URL", "SHOAL_CACHE_URL"} & set(settings)),
         "connection strings are in the Secret, not the ConfigMap")
    rule(all("CHANGE-ME" in v for k, v in secret_data.items() if k in {"DATABASE_URL", "REDIS_URL"})
         and "example" in json.dumps(secret["metadata"].get("annotations") or {}),
         "Secret values are marked as examples")

    ingress_spec = ingress.get("spec") or {}
    tls = ingress_spec.get("tls") or []
    tls_hosts = {h for t in tls for h in t.get("hosts") or []}
    rule(tls and all(t.get("secretName") for t in tls), "Ingress terminates TLS with a certificate Secret")
    rules = ingress_spec.get("rules") or []
    rule(rules and all(r.get("host") in tls_hosts for r in rules), "every Ingress host is covered by its TLS section")
    backends = [p.get("backend", {}).get("service", {}) for r in rules for p in (r.get("http") or {}).get("paths") or []]
    service_port_names = {p.get("name") for p in service_ports} | {p.get("port") for p in service_ports}
    rule(backends and all(b.get("name") == service["metadata"]["name"]
                          and ((b.get("port") or {}).get("name") in service_port_names
                               or (b.get("port") or {}).get("number") in service_port_names) for b in backends),
         "Ingress sends to the Service's port")
    targets = {}
    for p in service_ports:
        targets[p.get("name")] = targets[p.get("port")] = p.get("targetPort")
    rule(backends and not any(is_admin(targets.get((b.get("port") or {}).get("name"),
                                                   targets.get((b.get("port") or {}).get("number"))))
                              for b in backends),
         "Ingress never reaches the admin port")
    return failures


# Each break must make check() fail: a rule that cannot fail checks nothing.
def _node(objects):
    return next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _kind(objects, kind):
    return next(o for o in objects if o["kind"] == kind)


BREAKS = [
    ("readiness on /healthz", lambda d: _node(d)["readinessProbe"]["httpGet"].update(path="/healthz")),
    ("liveness on /readyz", lambda d: _node(d)["livenessProbe"]["httpGet"].update(path="/readyz")),
    ("probe on another port", lambda d: _node(d)["readinessProbe"]["httpGet"].update(port=9999)),
    ("readiness on the public port", lambda d: _node(d)["readinessProbe"]["httpGet"].update(port="http")),
    ("liveness on the public port", lambda d: _node(d)["livenessProbe"]["httpGet"].update(port=8080)),
    ("startup on the public port", lambda d: _node(d)["startupProbe"]["httpGet"].update(port="http")),
    ("no admin container port", lambda d: _node(d).update(ports=[_node(d)["ports"][0]])),
    ("admin port is the public port", lambda d: _kind(d, "ConfigMap")["data"].update(SHOAL_ADMIN_PORT="8080")),
    ("no scrape annotation", lambda d: _kind(d, "Deployment")["spec"]["template"]["metadata"].pop("annotations")),
    ("scrape on the public port", lambda d: _kind(d, "Deployment")["spec"]["template"]["metadata"]["annotations"]
     .update({"prometheus.io/port": "8080"})),
    ("Service exposes the admin port", lambda d: _kind(d, "Service")["spec"]["ports"].append(
        {"name": "admin", "port": 9080, "targetPort": "admin", "protocol": "TCP"})),
    ("Ingress to the admin port", lambda d: (
        _kind(d, "Service")["spec"]["ports"].append({"name": "ops", "port": 81, "targetPort": 9080}),
        _kind(d, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(port={"number": 81}))),
    ("no preStop", lambda d: _node(d).pop("lifecycle")),
    ("preStop that only sleeps", lambda d: _node(d)["lifecycle"]["preStop"]["exec"].update(command=["/bin/sleep", "5"])),
    ("grace period too short", lambda d: _kind(d, "Deployment")["spec"]["template"]["spec"].update(
        terminationGracePeriodSeconds=15)),
    ("longer drain delay", lambda d: _kind(d, "ConfigMap")["data"].update(SHOAL_DRAIN_DELAY_MS="20000")),
    ("no limits", lambda d: _node(d)["resources"].pop("limits")),
    ("another CPU share", lambda d: _node(d)["resources"]["limits"].update(cpu="2")),
    ("root", lambda d: _kind(d, "Deployment")["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0)),
    ("no runAsNonRoot", lambda d: _kind(d, "Job")["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")),
    ("writable root", lambda d: _node(d)["securityContext"].update(readOnlyRootFilesystem=False)),
    ("escalation", lambda d: _node(d)["securityContext"].pop("allowPrivilegeEscalation")),
    ("a capability added", lambda d: _node(d)["securityContext"]["capabilities"].update(add=["NET_ADMIN"])),
    ("nodes migrate", lambda d: _node(d).update(args=["serve"])),
    ("Job serves", lambda d: _kind(d, "Job")["spec"]["template"]["spec"]["containers"][0].update(args=["serve"])),
    ("replicas set", lambda d: _kind(d, "Deployment")["spec"].update(replicas=3)),
    ("Service selects the Job", lambda d: _kind(d, "Service")["spec"].update(
        selector={"app.kubernetes.io/name": "shoal"})),
    ("Service selects nothing", lambda d: _kind(d, "Service")["spec"]["selector"].update(
        {"app.kubernetes.io/component": "api"})),
    ("PDB selects nothing", lambda d: _kind(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(
        {"app.kubernetes.io/component": "api"})),
    ("PDB blocks evictions", lambda d: _kind(d, "PodDisruptionBudget").update(
        spec={"minAvailable": 2, "selector": _kind(d, "PodDisruptionBudget")["spec"]["selector"]})),
    ("HPA on memory", lambda d: _kind(d, "HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"].update(
        name="memory")),
    ("HPA on another target", lambda d: _kind(d, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(
        name="other")),
    ("HPA past the connection budget", lambda d: _kind(d, "HorizontalPodAutoscaler")["spec"].update(
        maxReplicas=64)),
    ("no TLS", lambda d: _kind(d, "Ingress")["spec"].pop("tls")),
    ("Ingress to another Service", lambda d: _kind(d, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
     ["service"].update(name="other")),
    ("no REDIS_URL", lambda d: _kind(d, "Secret")["stringData"].pop("REDIS_URL")),
    ("DATABASE_URL in the ConfigMap", lambda d: _kind(d, "ConfigMap")["data"].update(DATABASE_URL="postgresql://x")),
    ("Secret not marked", lambda d: _kind(d, "Secret")["metadata"].pop("annotations")),
    ("no PDB", lambda d: d.remove(_kind(d, "PodDisruptionBudget"))),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=os.path.join(REPO, "deploy", "k8s"))
    parser.add_argument("--render")
    parser.add_argument("--self-test", action="store_true")
    options = parser.parse_args()

    _, objects, files = load_kustomization(options.dir)
    problems = 0
    present = {os.path.normpath(os.path.join(options.dir, f)) for f in os.listdir(options.dir)
               if f.endswith((".yaml", ".yml")) and f != "kustomization.yaml"}
    stray = sorted(present - set(files))
    print(("ok   - " if not stray else "FAIL - ") + "every manifest in %s is in kustomization.yaml%s"
          % (os.path.relpath(options.dir, REPO), " (not: %s)" % ", ".join(stray) if stray else ""))
    problems += bool(stray)

    if options.self_test:
        for name, breaks in BREAKS:
            broken = copy.deepcopy(objects)
            breaks(broken)
            caught = check(broken, lambda ok, what: None)
            print(("ok   - " if caught else "FAIL - ") + "break '%s' is caught%s"
                  % (name, " (%s)" % caught[0] if caught else ""))
            problems += not caught
    else:
        problems += len(check(objects, lambda ok, what: print(("ok   - " if ok else "FAIL - ") + what)))

    if options.render:
        with open(options.render, "w") as f:
            json.dump([{k: v for k, v in o.items() if k != "__file"} for o in objects], f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
