//! Resources served in two API versions from one storage key: whatever
//! version an object was written through, every version reads it in its
//! own shape (get, list, watch, patch, kubectl).

mod support;

use support::{json, patch_json, post_json, put_json, Server};

fn server() -> Server {
    Server::start(&["--disable-controller-manager", "--disable-scheduler"])
}

const CORE_EVENTS: &str = "/api/v1/namespaces/default/events";
const NEW_EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

#[test]
fn an_event_written_through_either_api_reads_in_the_shape_of_each() {
    let server = server();
    let (code, body) = post_json(
        &server,
        NEW_EVENTS,
        r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"started"},
            "eventTime":"2024-05-01T11:59:00.000000Z","type":"Normal","reason":"Started",
            "action":"Start","note":"container started","reportingController":"rustkube.io/kubelet",
            "reportingInstance":"node-1","regarding":{"kind":"Pod","namespace":"default","name":"web"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["apiVersion"], "events.k8s.io/v1", "{created}");
    assert_eq!(created["note"], "container started");

    let (code, body) = server.curl_admin(&[&format!("{CORE_EVENTS}/started")]);
    assert_eq!(code, 200, "{body}");
    let core = json(&body);
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "container started");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "rustkube.io/kubelet");
    assert!(core.get("note").is_none(), "{core}");

    // A core write is seen through events.k8s.io under the new names.
    let (code, body) = post_json(
        &server,
        CORE_EVENTS,
        r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"pulled"},"type":"Normal",
            "reason":"Pulled","message":"image pulled","count":2,
            "involvedObject":{"kind":"Pod","namespace":"default","name":"web"},
            "source":{"component":"kubelet"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = server.curl_admin(&[NEW_EVENTS]);
    assert_eq!(code, 200, "{body}");
    let list = json(&body);
    let pulled = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metadata"]["name"] == "pulled")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(pulled["apiVersion"], "events.k8s.io/v1");
    assert_eq!(pulled["note"], "image pulled");
    assert_eq!(pulled["deprecatedCount"], 2);
    assert_eq!(pulled["deprecatedSource"]["component"], "kubelet");
    assert!(pulled.get("message").is_none(), "{pulled}");

    // Field selectors use the events.k8s.io names.
    let names = |selector: &str| -> Vec<String> {
        let (code, body) = server.curl_admin(&[&format!("{NEW_EVENTS}?fieldSelector={selector}")]);
        assert_eq!(code, 200, "{body}");
        support::item_names(&body)
    };
    assert_eq!(names("reason%3DPulled"), vec!["pulled".to_string()]);
    assert_eq!(names("regarding.name%3Dweb").len(), 2);
    assert!(names("regarding.name%3Dother").is_empty());
    assert_eq!(
        names("reportingController%3Drustkube.io%2Fkubelet"),
        vec!["started".to_string()]
    );

    // A merge patch through events.k8s.io addresses the new names.
    let (code, body) = patch_json(
        &server,
        &format!("{NEW_EVENTS}/pulled"),
        "application/merge-patch+json",
        r#"{"note":"image pulled again"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["note"], "image pulled again");
    let (_, body) = server.curl_admin(&[&format!("{CORE_EVENTS}/pulled")]);
    assert_eq!(json(&body)["message"], "image pulled again");

    // kubectl (core events) prints both.
    let out = server.kubectl_ok("1.33", &["get", "events"]);
    assert!(out.contains("container started"), "{out}");
    assert!(out.contains("image pulled again"), "{out}");
}

#[test]
fn an_event_watch_through_events_api_delivers_the_new_shape() {
    let server = server();
    let (code, body) = server.curl_admin(&[NEW_EVENTS]);
    assert_eq!(code, 200, "{body}");
    let rv = json(&body)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = post_json(
        &server,
        CORE_EVENTS,
        r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"killed"},"type":"Warning",
            "reason":"Killing","message":"stopping container",
            "involvedObject":{"kind":"Pod","namespace":"default","name":"web"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = server.curl_admin(&[&format!(
        "{NEW_EVENTS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    )]);
    assert_eq!(code, 200, "{body}");
    let first = json(body.lines().next().unwrap_or_default());
    assert_eq!(first["type"], "ADDED", "{body}");
    assert_eq!(first["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(first["object"]["note"], "stopping container");
    assert_eq!(first["object"]["regarding"]["name"], "web");
}

const HPA_V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const HPA_V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

#[test]
fn an_autoscaler_reads_in_v1_and_v2_and_survives_a_v1_round_trip() {
    let server = server();
    // kubectl autoscale writes autoscaling/v2.
    server.kubectl_ok(
        "1.33",
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=1",
        ],
    );
    server.kubectl_ok(
        "1.33",
        &[
            "autoscale",
            "deployment",
            "web",
            "--max=5",
            "--cpu-percent=50",
        ],
    );
    let (code, body) = server.curl_admin(&[&format!("{HPA_V1}/web")]);
    assert_eq!(code, 200, "{body}");
    let v1 = json(&body);
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50, "{v1}");
    assert_eq!(v1["spec"]["maxReplicas"], 5);
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");

    // A v2 autoscaler with a metric v1 cannot express keeps it through a
    // v1 read-modify-write.
    let (code, body) = post_json(
        &server,
        HPA_V2,
        r#"{"apiVersion":"autoscaling/v2","kind":"HorizontalPodAutoscaler","metadata":{"name":"mem"},
            "spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},
            "maxReplicas":4,"metrics":[{"type":"Resource","resource":{"name":"memory",
            "target":{"type":"AverageValue","averageValue":"100Mi"}}}]}}"#,
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = server.curl_admin(&[&format!("{HPA_V1}/mem")]);
    assert_eq!(code, 200, "{body}");
    let mut v1 = json(&body);
    assert!(
        v1["spec"].get("targetCPUUtilizationPercentage").is_none(),
        "{v1}"
    );
    assert!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .is_some_and(|m| m.contains("100Mi")),
        "{v1}"
    );
    v1["spec"]["maxReplicas"] = serde_json::json!(6);
    let (code, body) = put_json(&server, &format!("{HPA_V1}/mem"), &v1.to_string());
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["apiVersion"], "autoscaling/v1");
    let (code, body) = server.curl_admin(&[&format!("{HPA_V2}/mem")]);
    assert_eq!(code, 200, "{body}");
    let v2 = json(&body);
    assert_eq!(v2["spec"]["maxReplicas"], 6, "{v2}");
    assert_eq!(
        v2["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}}])
    );
    assert!(
        v2["metadata"].get("annotations").is_none(),
        "the conversion annotations stay out of v2: {v2}"
    );

    // Lists in either version carry the version's shape.
    let (_, body) = server.curl_admin(&[HPA_V1]);
    let list = json(&body);
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["apiVersion"] == "autoscaling/v1" && h["spec"].get("metrics").is_none()),
        "{list}"
    );
    let out = server.kubectl_ok("1.33", &["get", "hpa"]);
    assert!(out.contains("cpu: <unknown>/50%"), "{out}");
}
