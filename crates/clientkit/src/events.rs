//! An Event recorder in the style of client-go's: core/v1 Events named
//! `<object>.<hex nanoseconds>`, with `source.component` set, and a repeat
//! of the same reason and message for the same object bumping `count` and
//! `lastTimestamp` of the existing Event instead of creating another.
//! Recording never fails the caller: errors are logged and dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;

/// Beyond this many remembered events the memory is simply cleared.
const REMEMBERED: usize = 4096;

/// (object, reason, message) -> (namespace, event name, count).
type Seen = HashMap<(String, String, String), (String, String, i32)>;

#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<Seen>>,
}

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str) -> Self {
        EventRecorder {
            client,
            component: component.into(),
            host: None,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Set `source.host` (kubelets and simulated nodes do).
    pub fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Record an event about `object` (type [`NORMAL`] or [`WARNING`]).
    pub async fn record(&self, object: &ObjectReference, type_: &str, reason: &str, message: &str) {
        if let Err(err) = self.try_record(object, type_, reason, message).await {
            tracing::debug!(%err, reason, "recording an event failed");
        }
    }

    async fn try_record(
        &self,
        object: &ObjectReference,
        type_: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = object
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".into());
        let key = (
            object.uid.clone().unwrap_or_default() + object.name.as_deref().unwrap_or(""),
            reason.to_string(),
            message.to_string(),
        );
        let now = Timestamp::now();
        let previous = self
            .seen
            .lock()
            .ok()
            .and_then(|seen| seen.get(&key).cloned());
        if let Some((ns, name, count)) = previous {
            let patch = serde_json::json!({
                "count": count + 1,
                "lastTimestamp": Time(now),
            });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.remember(key, ns, name, count + 1);
                return Ok(());
            }
        }
        let name = format!(
            "{}.{:x}",
            object.name.as_deref().unwrap_or("unknown"),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        // The answer, the Event as stored, is skipped rather than decoded:
        // nothing here reads it.
        let body = serde_json::to_vec(&event).map_err(kube::Error::SerdeError)?;
        let request = kube::core::Request::new(Event::url_path(&(), Some(&namespace)))
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.client
            .request::<serde::de::IgnoredAny>(request)
            .await?;
        self.remember(key, namespace, name, 1);
        Ok(())
    }

    fn remember(&self, key: (String, String, String), ns: String, name: String, count: i32) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert(key, (ns, name, count));
        }
    }
}

/// An ObjectReference to any typed object, for [`EventRecorder::record`].
pub fn reference<K>(object: &K) -> ObjectReference
where
    K: kube::Resource<DynamicType = ()>,
{
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}
