#!/usr/bin/env python3
"""End-to-end checks of the API server with the PyPI `kubernetes` client.

Usage: KUBECONFIG=/path/to/kubeconfig python3 tests/python/test_client.py

Runs against whatever server the kubeconfig names, in a fresh namespace of its
own (created first, deleted last). Every check prints "ok" or "FAIL" with the
request and response involved; the last line is "N passed, N failed" and the
exit status is 0 only if nothing failed (1 on failures, 2 if the client
package is missing or the server cannot be reached at all).

There are no sleeps used as assertions: waits are bounded polls, watches end
by their own timeoutSeconds, and every socket read times out.

Watch from a too-old resourceVersion, as this client (kubernetes 33.1.0) sees
it: `Watch.stream(..., timeout_seconds=N)` disables the client's automatic
retry-after-410, so a server that behaves like upstream (HTTP 200, then one
ERROR event carrying a Status with code 410, reason "Expired") makes the
generator raise `ApiException(status=410, reason="Expired: <message>")` with
no body or headers. Had the server answered the request itself with HTTP 410,
the ApiException would instead come from the request, with headers and a JSON
body. The check below requires the upstream (ERROR event) form and prints
which one it saw.
"""

import ipaddress
import json
import os
import socket
import sys
import time
import traceback
import uuid

try:
    import kubernetes
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException
except ImportError as exc:  # fail loudly, never skip
    print(
        "FATAL: the PyPI 'kubernetes' package is not importable (%s); "
        "install it with: bash scripts/deps.sh --test" % exc,
        file=sys.stderr,
    )
    sys.exit(2)

# Every socket read gives up after this long (urllib3 falls back to the
# socket default timeout), so a hung server fails the run instead of hanging it.
socket.setdefaulttimeout(30)

PASSED = []
FAILED = []


def check(name, cond, detail=""):
    """Record one check; never raises."""
    if cond:
        PASSED.append(name)
        print("ok   %s" % name, flush=True)
    else:
        FAILED.append(name)
        print("FAIL %s%s" % (name, (": %s" % (detail,)) if detail else ""), flush=True)
    return bool(cond)


def must(name, cond, detail=""):
    """A check the rest of its section depends on: raises when it fails."""
    if not check(name, cond, detail):
        raise SectionAborted(name)


class SectionAborted(Exception):
    pass


def describe(exc):
    if isinstance(exc, ApiException):
        return "ApiException status=%s reason=%r body=%s" % (exc.status, exc.reason, exc.body)
    return "%s: %s" % (type(exc).__name__, exc)


def call(name, fn, *args, **kwargs):
    """Call the API; a raised exception fails check `name` and aborts the section."""
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        check(name, False, "raised %s" % describe(exc))
        raise SectionAborted(name)
    check(name, True)
    return result


def status_body(exc):
    try:
        return json.loads(exc.body)
    except Exception:  # noqa: BLE001
        return None


def expect_error(name, status, reason, fn, *args, message=None, details=None, **kwargs):
    """Call fn expecting ApiException(status) with a JSON Status body of `reason`."""
    try:
        result = fn(*args, **kwargs)
    except ApiException as exc:
        body = status_body(exc)
        problems = []
        if exc.status != status:
            problems.append("status %s, want %s" % (exc.status, status))
        if not isinstance(body, dict):
            problems.append("body is not JSON: %r" % (exc.body,))
        else:
            want = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "code": status, "reason": reason}
            for key, value in want.items():
                if body.get(key) != value:
                    problems.append("body[%r]=%r, want %r" % (key, body.get(key), value))
            if message is not None and body.get("message") != message:
                problems.append("message %r, want %r" % (body.get("message"), message))
            for key, value in (details or {}).items():
                got = (body.get("details") or {}).get(key)
                if got != value:
                    problems.append("details[%r]=%r, want %r" % (key, got, value))
        ctype = (exc.headers or {}).get("Content-Type", "")
        if not ctype.startswith("application/json"):
            problems.append("Content-Type %r, want application/json" % ctype)
        check(name, not problems, "; ".join(problems) + " | body=%s" % exc.body)
        return body
    except Exception as exc:  # noqa: BLE001
        check(name, False, "raised %s, want ApiException %d" % (describe(exc), status))
        return None
    check(name, False, "succeeded (%r), want ApiException %d %s" % (result, status, reason))
    return None


def poll(deadline_s, fn):
    """Call fn until it returns a truthy value or the deadline passes; returns the last value."""
    end = time.monotonic() + deadline_s
    while True:
        value = fn()
        if value or time.monotonic() >= end:
            return value
        time.sleep(0.1)


def rv_int(rv):
    try:
        return int(rv)
    except (TypeError, ValueError):
        return None


def configmap(name, data, labels=None):
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


# --------------------------------------------------------------------------
# Sections


def section_namespaces(v1, ns_base):
    name = ns_base + "-crud"
    created = call("namespace create", v1.create_namespace,
                   client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    check("namespace create: name, uid, resourceVersion set",
          created.metadata.name == name and created.metadata.uid and created.metadata.resource_version,
          created.metadata)
    check("namespace create: status.phase Active",
          created.status is not None and created.status.phase == "Active", created.status)
    check("namespace create: spec.finalizers [kubernetes]",
          created.spec is not None and created.spec.finalizers == ["kubernetes"], created.spec)

    read = call("namespace read", v1.read_namespace, name)
    check("namespace read: same uid and resourceVersion",
          read.metadata.uid == created.metadata.uid
          and read.metadata.resource_version == created.metadata.resource_version,
          (read.metadata.uid, read.metadata.resource_version))

    stale = v1.read_namespace(name)
    read.metadata.labels = dict(read.metadata.labels or {}, replaced="yes")
    replaced = call("namespace replace (read object + label)", v1.replace_namespace, name, read)
    check("namespace replace: resourceVersion changed",
          replaced.metadata.resource_version != created.metadata.resource_version,
          replaced.metadata.resource_version)
    check("namespace replace: label stored", (replaced.metadata.labels or {}).get("replaced") == "yes",
          replaced.metadata.labels)

    patched = call("namespace patch (strategic merge dict)", v1.patch_namespace, name,
                   {"metadata": {"labels": {"patched": "yes"}}})
    labels = patched.metadata.labels or {}
    check("namespace patch: labels merged",
          labels.get("replaced") == "yes" and labels.get("patched") == "yes", labels)
    check("namespace patch: resourceVersion changed",
          patched.metadata.resource_version != replaced.metadata.resource_version)

    expect_error("namespace create existing -> 409 AlreadyExists", 409, "AlreadyExists",
                 v1.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=name)),
                 message='namespaces "%s" already exists' % name,
                 details={"name": name, "kind": "namespaces"})
    expect_error("namespace replace stale resourceVersion -> 409 Conflict", 409, "Conflict",
                 v1.replace_namespace, name, stale,
                 message='Operation cannot be fulfilled on namespaces "%s": the object has been '
                         'modified; please apply your changes to the latest version and try again' % name)

    names = [n.metadata.name for n in v1.list_namespace().items]
    check("namespace list contains it", name in names, names)

    call("namespace delete", v1.delete_namespace, name)
    try:
        terminating = v1.read_namespace(name)
        check("namespace after delete: Terminating with a deletionTimestamp (or already gone)",
              terminating.status.phase == "Terminating"
              and terminating.metadata.deletion_timestamp is not None,
              (terminating.status, terminating.metadata.deletion_timestamp))
        expect_error("create in a terminating namespace -> 403 Forbidden", 403, "Forbidden",
                     v1.create_namespaced_config_map, name, configmap("late", {"a": "b"}),
                     message='configmaps "late" is forbidden: unable to create new content in '
                             'namespace %s because it is being terminated' % name)
    except ApiException as exc:
        check("namespace after delete: Terminating with a deletionTimestamp (or already gone)",
              exc.status == 404, describe(exc))

    # Removing a deleted namespace for good is the namespace controller's job
    # (kube-controller-manager upstream, not the API server's). It is not
    # part of rustkube yet, so do what it does once the namespace is empty:
    # clear spec.finalizers through the finalize subresource.
    def finalize():
        current = v1.read_namespace(name)
        current.spec.finalizers = []
        v1.replace_namespace_finalize(name, current)

    call("namespace finalize (as the namespace controller would)", finalize)

    def gone():
        try:
            v1.read_namespace(name)
            return False
        except ApiException as exc:
            return exc.status == 404

    check("namespace deleted: read returns 404 once finalized", poll(30, gone))
    expect_error("namespace read after delete -> 404 NotFound", 404, "NotFound",
                 v1.read_namespace, name, message='namespaces "%s" not found' % name,
                 details={"name": name, "kind": "namespaces"})


def section_configmaps(v1, ns):
    name = "crud"
    created = call("configmap create", v1.create_namespaced_config_map, ns,
                   configmap(name, {"a": "1"}, {"app": "crud"}))
    check("configmap create: metadata filled",
          created.metadata.name == name and created.metadata.namespace == ns
          and created.metadata.uid and created.metadata.resource_version
          and created.metadata.creation_timestamp is not None,
          created.metadata)
    check("configmap create: data", created.data == {"a": "1"}, created.data)

    read = call("configmap read", v1.read_namespaced_config_map, name, ns)
    check("configmap read: same object",
          read.metadata.uid == created.metadata.uid
          and read.metadata.resource_version == created.metadata.resource_version
          and read.data == {"a": "1"},
          read)
    stale = v1.read_namespaced_config_map(name, ns)

    read.data["a"] = "one"
    replaced = call("configmap replace (read object)", v1.replace_namespaced_config_map, name, ns, read)
    check("configmap replace: resourceVersion changed",
          replaced.metadata.resource_version != created.metadata.resource_version,
          replaced.metadata.resource_version)
    check("configmap replace: data updated", replaced.data == {"a": "one"}, replaced.data)

    patched = call("configmap patch (strategic merge dict)", v1.patch_namespaced_config_map, name, ns,
                   {"data": {"b": "2"}, "metadata": {"labels": {"patched": "yes"}}})
    check("configmap patch: data merged", patched.data == {"a": "one", "b": "2"}, patched.data)
    check("configmap patch: labels merged",
          patched.metadata.labels == {"app": "crud", "patched": "yes"}, patched.metadata.labels)
    check("configmap patch: resourceVersion changed",
          patched.metadata.resource_version != replaced.metadata.resource_version)

    jpatched = call("configmap patch (JSON patch list)", v1.patch_namespaced_config_map, name, ns,
                    [{"op": "add", "path": "/data/c", "value": "3"},
                     {"op": "remove", "path": "/data/a"}])
    check("configmap JSON patch applied", jpatched.data == {"b": "2", "c": "3"}, jpatched.data)

    again = v1.read_namespaced_config_map(name, ns)
    check("configmap read after patches",
          again.data == {"b": "2", "c": "3"}
          and again.metadata.resource_version == jpatched.metadata.resource_version,
          again)

    expect_error("configmap create existing -> 409 AlreadyExists", 409, "AlreadyExists",
                 v1.create_namespaced_config_map, ns, configmap(name, {"x": "y"}),
                 message='configmaps "%s" already exists' % name,
                 details={"name": name, "kind": "configmaps"})
    stale.data = {"stale": "write"}
    expect_error("configmap replace stale resourceVersion -> 409 Conflict", 409, "Conflict",
                 v1.replace_namespaced_config_map, name, ns, stale,
                 message='Operation cannot be fulfilled on configmaps "%s": the object has been '
                         'modified; please apply your changes to the latest version and try again' % name,
                 details={"name": name, "kind": "configmaps"})
    check("configmap unchanged by the refused writes",
          v1.read_namespaced_config_map(name, ns).data == {"b": "2", "c": "3"})

    call("configmap delete", v1.delete_namespaced_config_map, name, ns)
    expect_error("configmap read after delete -> 404 NotFound", 404, "NotFound",
                 v1.read_namespaced_config_map, name, ns,
                 message='configmaps "%s" not found' % name,
                 details={"name": name, "kind": "configmaps"})
    expect_error("configmap delete again -> 404 NotFound", 404, "NotFound",
                 v1.delete_namespaced_config_map, name, ns)
    expect_error("configmap read in a missing namespace -> 404 NotFound", 404, "NotFound",
                 v1.read_namespaced_config_map, name, ns + "-nope")


def section_list_chunking(v1, ns):
    names = ["chunk-%02d" % i for i in range(25)]
    for n in names:
        v1.create_namespaced_config_map(ns, configmap(n, {"i": n}, {"chunk": "yes"}))
    check("created 25 configmaps", True)

    full = call("unpaginated list", v1.list_namespaced_config_map, ns)
    all_names = [i.metadata.name for i in full.items]
    check("unpaginated list: has all 25", set(names) <= set(all_names), all_names)
    check("unpaginated list: no continue, no remainingItemCount",
          not full.metadata._continue and full.metadata.remaining_item_count is None,
          full.metadata)
    check("unpaginated list: sorted by name", all_names == sorted(all_names), all_names)
    total = len(all_names)

    seen = []
    pages = []
    token = None
    late = "aaa-created-between-pages"
    while True:
        kwargs = {"limit": 10}
        if token:
            kwargs["_continue"] = token
        page = v1.list_namespaced_config_map(ns, **kwargs)
        pages.append(page)
        seen.extend(i.metadata.name for i in page.items)
        if len(pages) == 1:
            # Lists resumed with a continue token are a snapshot at the first
            # page's revision: this object must not show up in later pages.
            v1.create_namespaced_config_map(ns, configmap(late.replace("aaa", "zzz"), {"late": "1"}))
        token = page.metadata._continue
        if not token or len(pages) > 20:
            break
    check("paged list: ended with an empty continue", not token, token)
    check("paged list: %d pages of at most 10" % len(pages),
          len(pages) == (total + 9) // 10 and all(len(p.items) <= 10 for p in pages),
          [len(p.items) for p in pages])
    check("paged list: every name exactly once, same as unpaginated",
          seen == all_names, "paged=%s unpaginated=%s" % (seen, all_names))
    first = pages[0]
    check("paged list: remaining_item_count on first page = %d" % (total - 10),
          first.metadata.remaining_item_count == total - 10, first.metadata.remaining_item_count)
    check("paged list: first page has a continue token", bool(first.metadata._continue))
    if len(pages) > 2:
        check("paged list: remaining_item_count on second page = %d" % (total - 20),
              pages[1].metadata.remaining_item_count == total - 20,
              pages[1].metadata.remaining_item_count)
    check("paged list: last page has no remaining_item_count",
          pages[-1].metadata.remaining_item_count is None, pages[-1].metadata.remaining_item_count)
    check("paged list: all pages share the first page's resourceVersion",
          len({p.metadata.resource_version for p in pages}) == 1,
          [p.metadata.resource_version for p in pages])
    check("paged list: object created between pages is not in the snapshot",
          late.replace("aaa", "zzz") not in seen, seen)

    # A label selector restricts what is paged through.
    seen_sel, token, rounds = [], None, 0
    while rounds < 20:
        kwargs = {"limit": 10, "label_selector": "chunk=yes"}
        if token:
            kwargs["_continue"] = token
        page = v1.list_namespaced_config_map(ns, **kwargs)
        seen_sel.extend(i.metadata.name for i in page.items)
        token = page.metadata._continue
        rounds += 1
        if not token:
            break
    check("paged list with labelSelector: exactly the 25", seen_sel == names, seen_sel)

    expect_error("list with a garbage continue token -> 400 BadRequest", 400, "BadRequest",
                 v1.list_namespaced_config_map, ns, limit=10, _continue="not-a-token")


def section_watch(v1, ns):
    listed = call("list for watch resourceVersion", v1.list_namespaced_config_map, ns)
    rv = listed.metadata.resource_version
    must("list has a resourceVersion", bool(rv), listed.metadata)

    name = "watched"
    created = v1.create_namespaced_config_map(ns, configmap(name, {"v": "1"}))
    cur = v1.read_namespaced_config_map(name, ns)
    cur.data = {"v": "2"}
    modified = v1.replace_namespaced_config_map(name, ns, cur)
    v1.delete_namespaced_config_map(name, ns)
    check("create/modify/delete for the watch", True)

    events = []
    try:
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=3):
            events.append(ev)
    except Exception as exc:  # noqa: BLE001
        check("watch from list resourceVersion ran to its timeout", False, describe(exc))
    else:
        check("watch from list resourceVersion ran to its timeout", True)
    ours = [e for e in events if e["raw_object"].get("metadata", {}).get("name") == name]
    types = [e["type"] for e in ours]
    check("watch: ADDED, MODIFIED, DELETED in order", types == ["ADDED", "MODIFIED", "DELETED"],
          [(e["type"], e["raw_object"].get("metadata", {}).get("name")) for e in events])
    others = [(e["type"], e["raw_object"].get("metadata", {}).get("name")) for e in events if e not in ours]
    check("watch: no unexpected events", not others, others)
    if types == ["ADDED", "MODIFIED", "DELETED"]:
        rvs = [e["object"].metadata.resource_version for e in ours]
        check("watch: objects decoded as V1ConfigMap",
              all(isinstance(e["object"], client.V1ConfigMap) for e in ours))
        check("watch: ADDED carries the created object",
              rvs[0] == created.metadata.resource_version and ours[0]["object"].data == {"v": "1"},
              (rvs[0], created.metadata.resource_version))
        check("watch: MODIFIED carries the replaced object",
              rvs[1] == modified.metadata.resource_version and ours[1]["object"].data == {"v": "2"},
              (rvs[1], modified.metadata.resource_version))
        ints = [rv_int(r) for r in [rv] + rvs]
        check("watch: resourceVersions increase (list < ADDED < MODIFIED < DELETED)",
              None not in ints and ints == sorted(ints) and len(set(ints)) == 4, [rv] + rvs)
        check("watch: DELETED carries the last state",
              ours[2]["object"].data == {"v": "2"} and ours[2]["object"].metadata.uid == created.metadata.uid)

    # Too-old resourceVersion: upstream answers HTTP 200 and then one ERROR
    # event whose object is a Status with code 410, reason Expired.
    # First the raw HTTP exchange, for the record.
    try:
        raw = v1.list_namespaced_config_map(ns, watch=True, resource_version="1", timeout_seconds=3,
                                            _preload_content=False)
        body = raw.data.decode("utf-8", "replace")
        print("info too-old watch, raw HTTP: status %s, body %r" % (raw.status, body[:500]), flush=True)
    except Exception as exc:  # noqa: BLE001
        print("info too-old watch, raw HTTP: %s" % describe(exc), flush=True)
    got = []
    try:
        for ev in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version="1",
                                       timeout_seconds=3):
            got.append(ev)
    except ApiException as exc:
        path = "ERROR event on HTTP 200" if exc.body is None and exc.headers is None \
            else "HTTP %s response" % exc.status
        print("info too-old watch: client raised ApiException(status=%s, reason=%r) from %s"
              % (exc.status, exc.reason, path), flush=True)
        check("watch from resourceVersion 1 -> ApiException 410", exc.status == 410, describe(exc))
        check("watch from resourceVersion 1: 410 arrives as an ERROR event (as upstream)",
              path == "ERROR event on HTTP 200", "%s: %s" % (path, describe(exc)))
        check("watch from resourceVersion 1: reason Expired",
              str(exc.reason).startswith("Expired: "), exc.reason)
    except Exception as exc:  # noqa: BLE001
        check("watch from resourceVersion 1 -> ApiException 410", False, describe(exc))
    else:
        check("watch from resourceVersion 1 -> ApiException 410", False,
              "no exception; events: %s" % [(e["type"], e["raw_object"]) for e in got][:10])


def section_deployments(apps, ns):
    name = "web"
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name=name, image="nginx:1.25",
                    ports=[client.V1ContainerPort(container_port=80)])]),
            ),
        ),
    )
    created = call("deployment create", apps.create_namespaced_deployment, ns, dep)
    check("deployment create: uid, resourceVersion, generation 1",
          created.metadata.uid and created.metadata.resource_version and created.metadata.generation == 1,
          created.metadata)
    spec = created.spec
    check("deployment create: upstream defaults (RollingUpdate 25%/25%, revisionHistoryLimit 10, "
          "progressDeadlineSeconds 600)",
          spec.strategy is not None and spec.strategy.type == "RollingUpdate"
          and spec.strategy.rolling_update is not None
          and spec.strategy.rolling_update.max_surge == "25%"
          and spec.strategy.rolling_update.max_unavailable == "25%"
          and spec.revision_history_limit == 10 and spec.progress_deadline_seconds == 600,
          (spec.strategy, spec.revision_history_limit, spec.progress_deadline_seconds))
    c = spec.template.spec.containers[0]
    check("deployment create: container defaults (IfNotPresent, TCP, terminationMessagePath)",
          c.image_pull_policy == "IfNotPresent" and c.ports[0].protocol == "TCP"
          and c.termination_message_path == "/dev/termination-log",
          c)

    read = call("deployment read", apps.read_namespaced_deployment, name, ns)
    check("deployment read: same uid", read.metadata.uid == created.metadata.uid)

    scale = call("deployment patch scale {spec: {replicas: 3}}", apps.patch_namespaced_deployment_scale,
                 name, ns, {"spec": {"replicas": 3}})
    check("patch scale: returns Scale with replicas 3",
          isinstance(scale, client.V1Scale) and scale.spec.replicas == 3, scale)
    got = call("deployment read scale", apps.read_namespaced_deployment_scale, name, ns)
    check("read scale: autoscaling/v1 Scale",
          got.api_version == "autoscaling/v1" and got.kind == "Scale", (got.api_version, got.kind))
    check("read scale: spec.replicas 3", got.spec.replicas == 3, got.spec)
    check("read scale: name, namespace, uid of the deployment",
          got.metadata.name == name and got.metadata.namespace == ns
          and got.metadata.uid == created.metadata.uid, got.metadata)
    check("read scale: status.selector app=web",
          got.status is not None and got.status.selector == "app=%s" % name, got.status)
    after = apps.read_namespaced_deployment(name, ns)
    check("deployment spec.replicas 3 after scale", after.spec.replicas == 3, after.spec.replicas)
    check("deployment generation bumped by scale", after.metadata.generation == 2, after.metadata.generation)

    # The deployment controller updates the status meanwhile, so a replace
    # carrying the Scale's resourceVersion may meet a 409: re-read and
    # retry, as real clients do.
    def replace_scale():
        for _ in range(10):
            current = apps.read_namespaced_deployment_scale(name, ns)
            current.spec.replicas = 2
            try:
                return apps.replace_namespaced_deployment_scale(name, ns, current)
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise RuntimeError("still conflicting after 10 attempts")
    replaced = call("deployment replace scale (read Scale, replicas 2)", replace_scale)
    check("replace scale: replicas 2", replaced.spec.replicas == 2, replaced.spec)
    check("deployment spec.replicas 2 after replace scale",
          apps.read_namespaced_deployment(name, ns).spec.replicas == 2)

    patched = call("deployment patch (strategic merge of containers by name)",
                   apps.patch_namespaced_deployment, name, ns,
                   {"spec": {"template": {"spec": {"containers": [{"name": name, "image": "nginx:1.27"}]}}}})
    cs = patched.spec.template.spec.containers
    check("deployment patch: container merged by name, ports kept",
          len(cs) == 1 and cs[0].image == "nginx:1.27" and cs[0].ports
          and cs[0].ports[0].container_port == 80, cs)

    names = [d.metadata.name for d in apps.list_namespaced_deployment(ns).items]
    check("deployment list contains it", names == [name], names)

    call("deployment delete", apps.delete_namespaced_deployment, name, ns)

    def gone():
        try:
            apps.read_namespaced_deployment(name, ns)
            return False
        except ApiException as exc:
            return exc.status == 404

    check("deployment read after delete -> 404 (within 30s)", poll(30, gone))


def section_services(v1, ns):
    net = ipaddress.ip_network("10.43.0.0/16")

    def svc(name):
        return client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(
                selector={"app": name},
                ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]),
        )

    a = call("service create", v1.create_namespaced_service, ns, svc("web"))
    ip = a.spec.cluster_ip
    check("service: ClusterIP allocated in 10.43.0.0/16",
          ip is not None and ip not in ("None", "") and ipaddress.ip_address(ip) in net
          and ip != "10.43.0.1", ip)
    check("service: clusterIPs == [clusterIP]", a.spec.cluster_i_ps == [ip], a.spec.cluster_i_ps)
    check("service: type ClusterIP, SingleStack IPv4, sessionAffinity None",
          a.spec.type == "ClusterIP" and a.spec.ip_families == ["IPv4"]
          and a.spec.ip_family_policy == "SingleStack" and a.spec.session_affinity == "None",
          a.spec)
    p = a.spec.ports[0]
    check("service: port defaults (TCP, targetPort 8080)",
          p.protocol == "TCP" and p.target_port == 8080 and p.port == 80, p)

    read = call("service read", v1.read_namespaced_service, "web", ns)
    check("service read: same ClusterIP", read.spec.cluster_ip == ip, read.spec.cluster_ip)

    b = call("second service create", v1.create_namespaced_service, ns, svc("web2"))
    check("second service: a different ClusterIP in 10.43.0.0/16",
          b.spec.cluster_ip and b.spec.cluster_ip != ip
          and ipaddress.ip_address(b.spec.cluster_ip) in net, b.spec.cluster_ip)

    patched = call("service patch (strategic merge labels)", v1.patch_namespaced_service, "web", ns,
                   {"metadata": {"labels": {"tier": "front"}}})
    check("service patch: ClusterIP kept", patched.spec.cluster_ip == ip, patched.spec.cluster_ip)

    kube = v1.read_namespaced_service("kubernetes", "default")
    check("the kubernetes service has 10.43.0.1", kube.spec.cluster_ip == "10.43.0.1", kube.spec.cluster_ip)

    call("service delete", v1.delete_namespaced_service, "web", ns)
    call("second service delete", v1.delete_namespaced_service, "web2", ns)
    expect_error("service read after delete -> 404 NotFound", 404, "NotFound",
                 v1.read_namespaced_service, "web", ns,
                 message='services "web" not found', details={"name": "web", "kind": "services"})


def main():
    if not os.environ.get("KUBECONFIG"):
        print("FATAL: set KUBECONFIG to the server's kubeconfig", file=sys.stderr)
        return 2
    print("info kubernetes client %s, python %s" % (kubernetes.__version__, sys.version.split()[0]),
          flush=True)
    config.load_kube_config()
    v1 = client.CoreV1Api()
    apps = client.AppsV1Api()

    try:
        version = client.VersionApi().get_code()
        print("info server %s" % version.git_version, flush=True)
    except Exception as exc:  # noqa: BLE001
        print("FATAL: cannot reach the server: %s" % describe(exc), file=sys.stderr)
        return 2

    ns = "pyclient-" + uuid.uuid4().hex[:8]
    try:
        v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    except Exception as exc:  # noqa: BLE001
        print("FATAL: cannot create namespace %s: %s" % (ns, describe(exc)), file=sys.stderr)
        return 2
    print("info namespace %s" % ns, flush=True)

    # If the server publishes kube-root-ca.crt into namespaces (as upstream's
    # controller does), let it land before anything counts configmaps.
    try:
        publishes = any(c.metadata.name == "kube-root-ca.crt"
                        for c in v1.list_namespaced_config_map("default").items)
    except ApiException:
        publishes = False
    if publishes:
        def published():
            return any(c.metadata.name == "kube-root-ca.crt"
                       for c in v1.list_namespaced_config_map(ns).items)
        check("kube-root-ca.crt published into the new namespace within 30s", poll(30, published))

    sections = [
        ("namespaces", lambda: section_namespaces(v1, ns)),
        ("configmaps", lambda: section_configmaps(v1, ns)),
        ("list chunking", lambda: section_list_chunking(v1, ns)),
        ("watch", lambda: section_watch(v1, ns)),
        ("deployments", lambda: section_deployments(apps, ns)),
        ("services", lambda: section_services(v1, ns)),
    ]
    for title, fn in sections:
        print("== %s" % title, flush=True)
        try:
            fn()
        except SectionAborted as exc:
            print("     (section %s stopped after: %s)" % (title, exc), flush=True)
        except Exception as exc:  # noqa: BLE001
            check("section %s ran without error" % title, False,
                  "%s\n%s" % (describe(exc), traceback.format_exc()))

    try:
        v1.delete_namespace(ns)
    except Exception as exc:  # noqa: BLE001
        print("info cleanup of namespace %s failed: %s" % (ns, describe(exc)), flush=True)

    if FAILED:
        print("\nFAILED checks:")
        for name in FAILED:
            print("  - %s" % name)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)), flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
