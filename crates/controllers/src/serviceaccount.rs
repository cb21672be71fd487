//! Two per-namespace publishers: the ServiceAccount controller (a
//! `default` ServiceAccount in every active namespace) and the root CA
//! publisher (the `kube-root-ca.crt` ConfigMap with `ca.crt` set to the
//! cluster CA in every namespace, recreated when deleted and repaired
//! when changed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::workload_util::{is_conflict, is_not_found, is_ready, reflect, run_loop, self_trigger};
use crate::{Context, Error};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other \
usage is guaranteed across distributions of Kubernetes clusters.";

struct State {
    ctx: Context,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
    config_maps: Store<ConfigMap>,
}

pub async fn run(ctx: Context) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (namespaces, ns_events) = ctx.informers.reflect::<Namespace>();
    let (accounts, sa_events) = reflect(
        Api::<ServiceAccount>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
    );
    let (config_maps, cm_events) = reflect(
        Api::<ConfigMap>::all(client),
        watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIG_MAP}")),
    );
    let to_namespace = |ns: Option<String>| ObjectRef::<Namespace>::new(&ns.unwrap_or_default());
    let sa_trigger = sa_events
        .map(move |sa| to_namespace(sa.metadata.namespace))
        .boxed();
    let cm_trigger = cm_events
        .map(move |cm| to_namespace(cm.metadata.namespace))
        .boxed();
    let state = Arc::new(State {
        ctx,
        namespaces: namespaces.clone(),
        accounts,
        config_maps,
    });
    run_loop(
        "serviceaccount",
        namespaces,
        vec![self_trigger(ns_events), sa_trigger, cm_trigger],
        reconcile,
        state,
    )
    .await;
    Ok(())
}

fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

async fn reconcile(ns: Arc<Namespace>, state: Arc<State>) -> Result<Action, Error> {
    if !is_ready(&state.namespaces) || !is_ready(&state.accounts) || !is_ready(&state.config_maps) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if !active(&ns) {
        return Ok(Action::await_change());
    }
    let namespace = ns.metadata.name.clone().unwrap_or_default();
    let client = &state.ctx.client;

    let sa_ref = ObjectRef::new(DEFAULT_SERVICE_ACCOUNT).within(&namespace);
    if state.accounts.get(&sa_ref).is_none() {
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            // Exists already (our cache lags) or the namespace is going away.
            Err(err) if is_conflict(&err) || is_not_found(&err) => {}
            Err(err) if is_forbidden(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }

    if let Some(ca) = state.ctx.options.root_ca_pem.clone() {
        let cm_ref = ObjectRef::new(ROOT_CA_CONFIG_MAP).within(&namespace);
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        match state.config_maps.get(&cm_ref) {
            None => {
                let config_map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ROOT_CA_CONFIG_MAP.into()),
                        namespace: Some(namespace.clone()),
                        annotations: Some(BTreeMap::from([(
                            "kubernetes.io/description".to_string(),
                            DESCRIPTION.to_string(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([("ca.crt".to_string(), ca)])),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &config_map).await {
                    Ok(_) => {}
                    Err(err) if is_conflict(&err) || is_not_found(&err) || is_forbidden(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Some(existing) => {
                let data = existing.data.clone().unwrap_or_default();
                let extra_keys = data.keys().any(|k| k != "ca.crt");
                if data.get("ca.crt") != Some(&ca) || extra_keys || existing.binary_data.is_some() {
                    // Replace the whole data map: only ca.crt belongs there.
                    let mut repaired = existing.as_ref().clone();
                    repaired.data = Some(BTreeMap::from([("ca.crt".to_string(), ca)]));
                    repaired.binary_data = None;
                    repaired.metadata.managed_fields = None;
                    match api
                        .replace(ROOT_CA_CONFIG_MAP, &PostParams::default(), &repaired)
                        .await
                    {
                        Ok(_) => {}
                        Err(err) if is_conflict(&err) || is_not_found(&err) => {
                            return Ok(Action::requeue(Duration::from_secs(1)))
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
    }
    Ok(Action::await_change())
}

fn is_forbidden(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 403)
}
