//! Services: the kubernetes Service, ClusterIP and NodePort allocation.

mod support;

use support::{json, Server};

fn create_svc(server: &Server, body: &str) -> (u16, serde_json::Value) {
    let (code, body) = support::post_json(server, "/api/v1/namespaces/default/services", body);
    (code, json(&body))
}

#[test]
fn the_kubernetes_service_points_at_the_api_server() {
    let server = Server::start(&[]);
    let svc = json(&server.kubectl_ok("1.33", &["get", "svc", "kubernetes", "-o", "json"]));
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    let ep = json(&server.kubectl_ok("1.33", &["get", "endpoints", "kubernetes", "-o", "json"]));
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], server.port);
}

#[test]
fn cluster_ips_and_node_ports_are_allocated_once_and_released_on_delete() {
    let server = Server::start(&[]);
    let (code, a) = create_svc(
        &server,
        r#"{"metadata":{"name":"a"},"spec":{"type":"NodePort","ports":[{"port":80}]}}"#,
    );
    assert_eq!(code, 201, "{a}");
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.43."), "{a}");
    assert_eq!(a["spec"]["clusterIPs"][0], ip.as_str());
    let node_port = a["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert!((30000..=32767).contains(&node_port));
    assert_eq!(a["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(a["spec"]["ports"][0]["protocol"], "TCP");

    // The same IP or port asked for explicitly is refused while in use.
    let (code, b) = create_svc(
        &server,
        &format!(
            r#"{{"metadata":{{"name":"b"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#
        ),
    );
    assert_eq!(code, 422, "{b}");
    assert_eq!(b["details"]["causes"][0]["field"], "spec.clusterIPs[0]");
    let (code, b) = create_svc(
        &server,
        &format!(
            r#"{{"metadata":{{"name":"b"}},"spec":{{"type":"NodePort","ports":[{{"port":80,"nodePort":{node_port}}}]}}}}"#
        ),
    );
    assert_eq!(code, 422, "{b}");
    let (code, b) = create_svc(
        &server,
        r#"{"metadata":{"name":"b"},"spec":{"clusterIP":"10.99.0.1","ports":[{"port":80}]}}"#,
    );
    assert_eq!(code, 422, "{b}");

    // The ClusterIP cannot change; switching to ClusterIP drops node ports.
    let mut changed = a.clone();
    changed["spec"]["clusterIP"] = serde_json::json!("10.43.7.7");
    let (code, body) = support::put_json(
        &server,
        "/api/v1/namespaces/default/services/a",
        &changed.to_string(),
    );
    assert_eq!(code, 422, "{body}");
    let mut to_cluster_ip = a.clone();
    to_cluster_ip["spec"]["type"] = serde_json::json!("ClusterIP");
    to_cluster_ip["spec"]
        .as_object_mut()
        .unwrap()
        .remove("externalTrafficPolicy");
    let (code, body) = support::put_json(
        &server,
        "/api/v1/namespaces/default/services/a",
        &to_cluster_ip.to_string(),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        json(&body)["spec"]["ports"][0].get("nodePort").is_none(),
        "{body}"
    );

    // Released node port and IP can be taken again.
    let (code, b) = create_svc(
        &server,
        &format!(
            r#"{{"metadata":{{"name":"b"}},"spec":{{"type":"NodePort","ports":[{{"port":80,"nodePort":{node_port}}}]}}}}"#
        ),
    );
    assert_eq!(code, 201, "{b}");
    let (code, _) = server.curl_admin(&["-X", "DELETE", "/api/v1/namespaces/default/services/a"]);
    assert_eq!(code, 200);
    let (code, c) = create_svc(
        &server,
        &format!(
            r#"{{"metadata":{{"name":"c"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#
        ),
    );
    assert_eq!(code, 201, "{c}");
    let (code, h) = create_svc(
        &server,
        r#"{"metadata":{"name":"headless"},"spec":{"clusterIP":"None","selector":{"app":"x"}}}"#,
    );
    assert_eq!(code, 201, "{h}");
    assert_eq!(h["spec"]["clusterIPs"][0], "None");
}

fn pod(name: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
    )
}

#[test]
fn pods_bind_once_and_scheduled_pods_delete_gracefully() {
    let server = Server::start(&[]);
    let base = "/api/v1/namespaces/default/pods";
    let post = |path: &str, body: &str| support::post_json(&server, path, body);
    let (code, body) = post(base, &pod("p"));
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["status"]["phase"], "Pending");
    assert_eq!(created["status"]["qosClass"], "BestEffort");
    let binding = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"node-1"}}"#;
    let (code, body) = post(&format!("{base}/p/binding"), binding);
    assert_eq!(code, 201, "{body}");
    let (code, body) = post(&format!("{base}/p/binding"), binding);
    assert_eq!(code, 409, "{body}");
    // The node is set only through binding; other spec changes are refused.
    let (_, body) = server.curl_admin(&[&format!("{base}/p")]);
    let mut bound = json(&body);
    assert_eq!(bound["spec"]["nodeName"], "node-1");
    bound["spec"]["restartPolicy"] = serde_json::json!("Never");
    let (code, body) = support::put_json(&server, &format!("{base}/p"), &bound.to_string());
    assert_eq!(code, 422, "{body}");
    // A scheduled pod is marked for deletion with its grace period...
    let (code, body) = server.curl_admin(&["-X", "DELETE", &format!("{base}/p")]);
    assert_eq!(code, 200, "{body}");
    let deleting = json(&body);
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = server.curl_admin(&[&format!("{base}/p")]);
    assert_eq!(code, 200);
    // ...and goes at once with a zero grace period (what the kubelet sends).
    let (code, body) = server.curl_admin(&[
        "-X",
        "DELETE",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"gracePeriodSeconds":0}"#,
        &format!("{base}/p"),
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.curl_admin(&[&format!("{base}/p")]);
    assert_eq!(code, 404);
    // An unscheduled pod goes at once.
    let (code, _) = post(base, &pod("q"));
    assert_eq!(code, 201);
    let (code, _) = server.curl_admin(&["-X", "DELETE", &format!("{base}/q")]);
    assert_eq!(code, 200);
    let (code, _) = server.curl_admin(&[&format!("{base}/q")]);
    assert_eq!(code, 404);
}

#[test]
fn field_selectors_cover_the_fields_upstream_offers() {
    let server = Server::start(&[]);
    let base = "/api/v1/namespaces/default/pods";
    let post = |path: &str, body: &str| support::post_json(&server, path, body);
    for name in ["on-node", "pending"] {
        assert_eq!(post(base, &pod(name)).0, 201);
    }
    let binding = r#"{"target":{"kind":"Node","name":"node-1"}}"#;
    assert_eq!(post(&format!("{base}/on-node/binding"), binding).0, 201);
    let names = |query: &str| {
        let (code, body) = server.curl_admin(&[&format!("{base}?fieldSelector={query}")]);
        assert_eq!(code, 200, "{query}: {body}");
        support::item_names(&body)
    };
    assert_eq!(names("spec.nodeName%3Dnode-1"), ["on-node"]);
    assert_eq!(names("spec.nodeName%3D"), ["pending"]);
    assert_eq!(
        names("status.phase%3DPending,spec.nodeName!%3Dnode-1"),
        ["pending"]
    );
    let (code, _) = server.curl_admin(&[&format!("{base}?fieldSelector=spec.bogus%3Dx")]);
    assert_eq!(code, 400);
    let out = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "pods",
            "--field-selector=spec.nodeName=node-1",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "pod/on-node");
    server.kubectl_ok(
        "1.33",
        &["create", "secret", "generic", "plain", "--from-literal=a=b"],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "secret",
            "docker-registry",
            "reg",
            "--docker-server=r.example",
            "--docker-username=u",
            "--docker-password=p",
        ],
    );
    let out = server.kubectl_ok(
        "1.33",
        &[
            "get",
            "secrets",
            "--field-selector=type=Opaque",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "secret/plain");
}
