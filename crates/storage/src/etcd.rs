//! The distributed backend: a real etcd v3 cluster over gRPC, plain or with
//! mutual TLS.
//!
//! Every conditional write is one etcd transaction comparing the key's
//! create or mod revision, so the conditions are checked by etcd itself;
//! the failure branch reads the key so a Conflict can carry its current
//! value without a second round trip.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions,
    GetOptions, Identity, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use crate::request::{check_compact, check_expected, check_key, check_range, check_watch};
use crate::{
    EventType, KeyValue, RangeRequest, RangeResponse, Result, Revision, StorageError, Store,
    WatchEvent, WatchStream,
};

/// How to reach an etcd cluster.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `https://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// CA bundle to verify the servers with (enables TLS).
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS; needs `key_file` too.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A [`Store`] backed by etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
}

/// How long to wait for etcd to tell the compact revision after it reported
/// one (see [`EtcdStore::compacted`]).
const COMPACT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl EtcdStore {
    /// Connect to the cluster in `config` and check that it answers.
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore> {
        if config.endpoints.is_empty() {
            return Err(StorageError::InvalidRequest(
                "no etcd endpoints given".into(),
            ));
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        if let Some(tls) = tls_options(&config).await? {
            options = options.with_tls(tls);
        }
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|err| unavailable("connect", err))?;
        let store = EtcdStore { client };
        store.current_revision().await?;
        Ok(store)
    }

    /// etcd's compaction errors do not say the compact revision; a watch
    /// from a compacted revision does, so watch from revision 1 (below any
    /// compaction) and read it. Best effort: falls back to `requested`.
    async fn compacted(&self, requested: Revision) -> StorageError {
        let probe = async {
            let mut watch = self
                .client
                .watch_client()
                .watch("\0", Some(WatchOptions::new().with_start_revision(1)))
                .await
                .ok()?;
            while let Ok(Some(resp)) = watch.message().await {
                if resp.compact_revision() > 0 {
                    return Some(resp.compact_revision());
                }
                if resp.canceled() {
                    return None;
                }
            }
            None
        };
        let compact_revision = tokio::time::timeout(COMPACT_PROBE_TIMEOUT, probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(requested);
        StorageError::Compacted {
            requested,
            compact_revision,
        }
    }

    /// Map an error from a call that read at `requested`.
    async fn read_error(&self, requested: Revision, err: etcd_client::Error) -> StorageError {
        match classify(&err) {
            Some(Kind::Compacted) => self.compacted(requested).await,
            Some(Kind::Future) => StorageError::FutureRevision {
                requested,
                current: self.current_revision().await.unwrap_or(0),
            },
            None => unavailable("read", err),
        }
    }
}

async fn tls_options(config: &EtcdConfig) -> Result<Option<TlsOptions>> {
    let read = |path: PathBuf| async move {
        tokio::fs::read(&path).await.map_err(|err| {
            StorageError::InvalidRequest(format!("cannot read {}: {err}", path.display()))
        })
    };
    let mut tls = TlsOptions::new();
    let mut enabled = false;
    if let Some(ca) = &config.ca_file {
        tls = tls.ca_certificate(Certificate::from_pem(read(ca.clone()).await?));
        enabled = true;
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(read(cert.clone()).await?, read(key.clone()).await?);
            tls = tls.identity(identity);
            enabled = true;
        }
        (None, None) => {}
        _ => {
            return Err(StorageError::InvalidRequest(
                "etcd client certificate and key must be given together".into(),
            ))
        }
    }
    if !enabled && config.endpoints.iter().any(|e| e.starts_with("https://")) {
        return Err(StorageError::InvalidRequest(
            "https etcd endpoints need a CA file".into(),
        ));
    }
    Ok(enabled.then_some(tls))
}

enum Kind {
    Compacted,
    Future,
}

fn classify(err: &etcd_client::Error) -> Option<Kind> {
    let message = match err {
        etcd_client::Error::GRpcStatus(status) => status.message(),
        _ => return None,
    };
    if message.contains("required revision has been compacted") {
        Some(Kind::Compacted)
    } else if message.contains("required revision is a future revision") {
        Some(Kind::Future)
    } else {
        None
    }
}

fn unavailable(what: &str, err: etcd_client::Error) -> StorageError {
    StorageError::Unavailable(format!("etcd {what}: {err}"))
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    Ok(KeyValue {
        key: kv
            .key_str()
            .map_err(|_| StorageError::Unavailable("etcd returned a non-UTF-8 key".into()))?
            .to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StorageError::Unavailable("etcd response without header".into()))
}

/// The key read by a transaction's failure branch (`TxnOp::get`).
fn failure_read(resp: &etcd_client::TxnResponse) -> Result<Option<KeyValue>> {
    for op in resp.op_responses() {
        if let TxnOpResponse::Get(get) = op {
            return get.kvs().first().map(convert).transpose();
        }
    }
    Ok(None)
}

/// The range [key, range_end) etcd should read for a prefix.
fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        // etcd's "every key".
        (vec![0], vec![0])
    } else {
        (prefix.as_bytes().to_vec(), crate::prefix_end(prefix))
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<(Option<KeyValue>, Revision)> {
        check_key(key)?;
        let resp = self
            .client
            .kv_client()
            .get(key, None)
            .await
            .map_err(|err| unavailable("get", err))?;
        let kv = resp.kvs().first().map(convert).transpose()?;
        Ok((kv, header_revision(resp.header())?))
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        check_range(&req)?;
        let (prefix_start, end) = prefix_range(&req.prefix);
        let start = match &req.start_key {
            Some(start) if !start.is_empty() => start.as_bytes().to_vec(),
            _ => prefix_start,
        };
        let options = GetOptions::new()
            .with_range(end)
            .with_limit(req.limit)
            .with_revision(req.revision);
        let resp = match self.client.kv_client().get(start, Some(options)).await {
            Ok(resp) => resp,
            Err(err) => return Err(self.read_error(req.revision, err).await),
        };
        let kvs = resp.kvs().iter().map(convert).collect::<Result<Vec<_>>>()?;
        let remaining = (resp.count() - kvs.len() as i64).max(0);
        let revision = if req.revision > 0 {
            req.revision
        } else {
            header_revision(resp.header())?
        };
        Ok(RangeResponse {
            kvs,
            more: remaining > 0,
            remaining,
            revision,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_key(key)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.clone(), None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|err| unavailable("create", err))?;
        if !resp.succeeded() {
            return Err(StorageError::KeyExists(key.to_owned()));
        }
        let revision = header_revision(resp.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        check_key(key)?;
        check_expected(key, expected)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(
                key,
                value.clone(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|err| unavailable("update", err))?;
        if !resp.succeeded() {
            return match failure_read(&resp)? {
                None => Err(StorageError::NotFound(key.to_owned())),
                Some(current) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: Some(current),
                }),
            };
        }
        let revision = header_revision(resp.header())?;
        let create_revision = resp
            .op_responses()
            .iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(put) => put.prev_key().map(|prev| prev.create_revision()),
                _ => None,
            })
            .ok_or_else(|| {
                StorageError::Unavailable("etcd update returned no previous key".into())
            })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        check_key(key)?;
        let compare = match expected {
            Some(expected) => {
                check_expected(key, expected)?;
                Compare::mod_revision(key, CompareOp::Equal, expected)
            }
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|err| unavailable("delete", err))?;
        if !resp.succeeded() {
            return match (failure_read(&resp)?, expected) {
                (Some(current), Some(expected)) => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: Some(current),
                }),
                _ => Err(StorageError::NotFound(key.to_owned())),
            };
        }
        let revision = header_revision(resp.header())?;
        let prev = resp
            .op_responses()
            .iter()
            .find_map(|op| match op {
                TxnOpResponse::Delete(del) => del.prev_kvs().first().map(convert),
                _ => None,
            })
            .transpose()?
            .ok_or_else(|| StorageError::NotFound(key.to_owned()))?;
        Ok(KeyValue {
            mod_revision: revision,
            ..prev
        })
    }

    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream> {
        check_watch(start_revision)?;
        let (key, end) = prefix_range(prefix);
        let mut options = WatchOptions::new().with_range(end).with_prev_key();
        if start_revision > 0 {
            options = options.with_start_revision(start_revision);
        }
        let stream = self
            .client
            .watch_client()
            .watch(key, Some(options))
            .await
            .map_err(|err| unavailable("watch", err))?;
        let state = EtcdWatch {
            stream,
            pending: std::collections::VecDeque::new(),
            finished: false,
            start_revision,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            EtcdWatch::next_item,
        )))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        check_compact(revision)?;
        match self
            .client
            .kv_client()
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => Err(self.read_error(revision, err).await),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        // A one-key count-only read: cheap, linearizable, carries the header.
        let resp = self
            .client
            .kv_client()
            .get("\0", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|err| unavailable("status", err))?;
        header_revision(resp.header())
    }

    fn backend_name(&self) -> &'static str {
        "etcd"
    }
}

/// The state of one etcd watch, converted to [`WatchStream`] items.
struct EtcdWatch {
    stream: etcd_client::WatchStream,
    pending: std::collections::VecDeque<Result<WatchEvent>>,
    finished: bool,
    start_revision: Revision,
}

impl EtcdWatch {
    async fn next_item(mut self) -> Option<(Result<WatchEvent>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    self.finished = true;
                    self.pending.clear();
                }
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(resp)) => {
                    if resp.compact_revision() > 0 {
                        self.pending.push_back(Err(StorageError::Compacted {
                            requested: self.start_revision,
                            compact_revision: resp.compact_revision(),
                        }));
                        continue;
                    }
                    for event in resp.events() {
                        self.pending.push_back(convert_event(event));
                    }
                    if resp.canceled() {
                        let reason = resp.cancel_reason();
                        self.pending
                            .push_back(Err(StorageError::Unavailable(format!(
                                "etcd canceled the watch: {reason}"
                            ))));
                    }
                }
                Ok(None) => {
                    self.pending.push_back(Err(StorageError::Unavailable(
                        "etcd closed the watch stream".into(),
                    )));
                }
                Err(err) => self.pending.push_back(Err(unavailable("watch", err))),
            }
        }
    }
}

fn convert_event(event: &etcd_client::Event) -> Result<WatchEvent> {
    let kv = event
        .kv()
        .ok_or_else(|| StorageError::Unavailable("etcd watch event without a key".into()))?;
    let prev_kv = event.prev_kv().map(convert).transpose()?;
    let event_type = match event.event_type() {
        etcd_client::EventType::Put => EventType::Put,
        etcd_client::EventType::Delete => EventType::Delete,
    };
    let mut kv = convert(kv)?;
    if event_type == EventType::Delete {
        // etcd's delete event carries only the key and the deleting
        // revision; the contract wants the last value too.
        if let Some(prev) = &prev_kv {
            kv.value = prev.value.clone();
            kv.create_revision = prev.create_revision;
        }
    }
    Ok(WatchEvent {
        event_type,
        kv,
        prev_kv,
    })
}
