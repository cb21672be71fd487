//! The namespace controller: empties a namespace being deleted, then
//! releases it.
//!
//! When a namespace has a deletionTimestamp and still carries the
//! `kubernetes` finalizer in `spec.finalizers`, every namespaced resource
//! found through discovery is deleted (deletecollection, or one by one
//! where that verb is not served); once nothing is left the finalizer is
//! removed through `PUT /api/v1/namespaces/{name}/finalize`, after which
//! the API server deletes the namespace. Progress is reported in the
//! namespace's status conditions as upstream does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use serde_json::json;

use crate::gc::{discover, Served};
use crate::workload_util::{is_not_found, is_ready, run_loop, self_trigger};
use crate::{Context, Error};

/// The finalizer this controller owns in `spec.finalizers`.
pub const KUBERNETES: &str = "kubernetes";

struct State {
    ctx: Context,
    namespaces: Store<Namespace>,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let (namespaces, events) = ctx.informers.reflect::<Namespace>();
    let state = Arc::new(State {
        ctx,
        namespaces: namespaces.clone(),
    });
    run_loop(
        "namespace",
        namespaces,
        vec![self_trigger(events)],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

/// The outcome of one pass over a namespace's content.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    pub discovery_failure: Option<String>,
    /// Resources whose deletion failed, with the error.
    pub deletion_failures: Vec<String>,
    /// `resource.group` -> objects left.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer -> objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

/// The five upstream conditions for a pass: (type, failing, reason, message).
pub fn conditions_for(pass: &Pass) -> Vec<(&'static str, bool, &'static str, String)> {
    let mut out = Vec::new();
    out.push(match &pass.discovery_failure {
        Some(err) => (
            "NamespaceDeletionDiscoveryFailure",
            true,
            "DiscoveryFailed",
            format!("Discovery failed for some groups: {err}"),
        ),
        None => (
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
    });
    out.push((
        "NamespaceDeletionGroupVersionParsingFailure",
        false,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".into(),
    ));
    out.push(if pass.deletion_failures.is_empty() {
        (
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        (
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                pass.deletion_failures.len(),
                pass.deletion_failures.join(", ")
            ),
        )
    });
    out.push(if pass.remaining.is_empty() {
        (
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        let parts: Vec<String> = pass
            .remaining
            .iter()
            .map(|(resource, count)| format!("{resource} has {count} resource instances"))
            .collect();
        (
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", parts.join(", ")),
        )
    });
    out.push(if pass.finalizers.is_empty() {
        (
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        let parts: Vec<String> = pass
            .finalizers
            .iter()
            .map(|(finalizer, count)| format!("{finalizer} in {count} resource instances"))
            .collect();
        (
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            ),
        )
    });
    out
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.namespaces) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == KUBERNETES) {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.clone().unwrap_or_default();
    let client = &state.ctx.client;
    let pass = delete_content(client, &name).await;
    write_conditions(client, &ns, &pass).await?;
    if pass.discovery_failure.is_some()
        || !pass.deletion_failures.is_empty()
        || !pass.remaining.is_empty()
    {
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    // Empty: release the namespace.
    let mut released = ns.as_ref().clone();
    if let Some(spec) = released.spec.as_mut() {
        spec.finalizers = Some(finalizers.into_iter().filter(|f| f != KUBERNETES).collect());
    }
    released.metadata.managed_fields = None;
    let api: Api<Namespace> = Api::all(client.clone());
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &released)
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

async fn delete_content(client: &kube::Client, namespace: &str) -> Pass {
    let mut pass = Pass::default();
    let resources = match discover(client).await {
        Ok(resources) => resources,
        Err(err) => {
            pass.discovery_failure = Some(err.to_string());
            return pass;
        }
    };
    let has = |s: &Served, verb: &str| s.verbs.iter().any(|v| v == verb);
    for served in resources.iter().filter(|s| {
        s.namespaced && has(s, "list") && (has(s, "delete") || has(s, "deletecollection"))
    }) {
        let label = format!("{}.{}", served.resource.plural, served.resource.group);
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &served.resource);
        let meta_api: Api<PartialObjectMeta<DynamicObject>> =
            Api::namespaced_with(client.clone(), namespace, &served.resource);
        let listed = match meta_api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(err) => {
                pass.deletion_failures.push(format!("{label}: {err}"));
                continue;
            }
        };
        if listed.is_empty() {
            continue;
        }
        let needs_delete = listed
            .iter()
            .any(|o| o.metadata.deletion_timestamp.is_none());
        if needs_delete {
            let result = if has(served, "deletecollection") {
                api.delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await
                    .map(|_| ())
            } else {
                let mut result = Ok(());
                for object in &listed {
                    if object.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    let name = object.metadata.name.clone().unwrap_or_default();
                    match api.delete(&name, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(err) if is_not_found(&err) => {}
                        Err(err) => result = Err(err),
                    }
                }
                result
            };
            if let Err(err) = result {
                pass.deletion_failures.push(format!("{label}: {err}"));
            }
        }
        // Count what is left after the deletion (objects with finalizers
        // or graceful periods stay for a while).
        let left = match meta_api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(_) => listed,
        };
        if !left.is_empty() {
            pass.remaining.insert(label, left.len());
            for object in &left {
                for finalizer in object.metadata.finalizers.iter().flatten() {
                    *pass.finalizers.entry(finalizer.clone()).or_default() += 1;
                }
            }
        }
    }
    pass
}

async fn write_conditions(client: &kube::Client, ns: &Namespace, pass: &Pass) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions: Vec<NamespaceCondition> = current
        .iter()
        .filter(|c| {
            !conditions_for(pass)
                .iter()
                .any(|(type_, ..)| *type_ == c.type_)
        })
        .cloned()
        .collect();
    for (type_, failing, reason, message) in conditions_for(pass) {
        let status = if failing { "True" } else { "False" };
        let previous = current.iter().find(|c| c.type_ == type_);
        let since = previous
            .filter(|p| p.status == status)
            .and_then(|p| p.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        conditions.push(NamespaceCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(since),
        });
    }
    if conditions == current {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let name = ns.metadata.name.clone().unwrap_or_default();
    match api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"conditions": conditions}})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_namespace_reports_every_condition_as_not_failing() {
        let conditions = conditions_for(&Pass::default());
        assert_eq!(conditions.len(), 5);
        assert!(conditions.iter().all(|(_, failing, ..)| !failing));
        assert_eq!(conditions[3].2, "ContentRemoved");
    }

    #[test]
    fn remaining_content_and_finalizers_are_reported_as_upstream_words_them() {
        let pass = Pass {
            remaining: [("pods.".to_string(), 2)].into(),
            finalizers: [("example.com/keep".to_string(), 1)].into(),
            ..Default::default()
        };
        let conditions = conditions_for(&pass);
        let remaining = &conditions[3];
        assert_eq!(remaining.0, "NamespaceContentRemaining");
        assert!(remaining.1);
        assert_eq!(remaining.2, "SomeResourcesRemain");
        assert_eq!(
            remaining.3,
            "Some resources are remaining: pods. has 2 resource instances"
        );
        assert_eq!(
            conditions[4].3,
            "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
        );
    }
}
