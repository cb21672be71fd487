//! Server-side apply and `metadata.managedFields`, as upstream's
//! structured-merge-diff (`merge.Updater`) and the apiserver's field
//! manager do them.
//!
//! - [`apply`]: an `application/apply-patch+yaml` request. The applied
//!   configuration is merged into the live object (maps merge, associative
//!   lists merge by key, sets union, atomic lists and scalars are
//!   replaced); fields the manager applied last time and no longer applies
//!   are removed unless another manager owns them; changing a field another
//!   manager owns is a conflict (409) unless `force`, which takes the field
//!   over.
//! - [`record_update`]: any other write (create, update, patch): the
//!   fields it changed become the manager's, with operation `Update`, and
//!   leave every other manager.
//!
//! Never owned: `apiVersion`, `kind`, `metadata.{name, namespace, uid,
//! resourceVersion, generation, creationTimestamp, selfLink,
//! managedFields}` (upstream's strip list) and `status` (upstream resets
//! status for the main resource; apply ignores an applied `status`).
//!
//! The caller's duties: refuse an apply without a field manager (400 "PATCH
//! request for apply must have fieldManager"), check the applied
//! `apiVersion`/`kind` against the URL with [`check_apply_target`] (this
//! module only checks them against the live object), and turn an
//! [`ApplyError`] into a `Status` with [`ApplyError::to_api_error`].
//!
//! Known gaps: subresource entries (`subresource: status`, `scale`) are
//! kept and respected but never produced; upstream's cap of ten `Update`
//! entries (folded into `ancient-changes`) is not applied; conversion of a
//! manager's set between API versions is not done (sets are used as
//! recorded); which empty fields exist in a freshly decoded Go object (and
//! so get no `"."` when added) is approximated by a list of names.

use serde_json::{Map, Value};

use super::fieldset::{
    item_key, list_keys, list_kind, path_string, FieldSet, ListKind, PathElement, MAX_DEPTH,
};
use super::patch_meta::{ListStrategy, PatchMeta};
use crate::status::{ApiError, StatusCause, StatusDetails, StatusReason};

/// `operation` of a managedFields entry written by [`apply`].
pub const OPERATION_APPLY: &str = "Apply";
/// `operation` of a managedFields entry written by [`record_update`].
pub const OPERATION_UPDATE: &str = "Update";

/// One field another manager owns and the apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How upstream prints the manager: `"kubectl"` for an `Apply` entry,
    /// `"kubectl" using v1` for an `Update` entry, with
    /// ` with subresource "status"` after the name where there is one.
    pub manager_display: String,
    /// Upstream's path string, e.g. `.data.a` or
    /// `.spec.containers[name="web"].image`.
    pub field_path_string: String,
}

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// 409: fields owned by other managers would change.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// 400: the applied configuration is not a usable object.
    #[error("{0}")]
    InvalidConfig(String),
    /// 500, as upstream: the applied configuration does not fit the
    /// kind's list semantics (an associative-list item without its key, two
    /// items with one key). `object` is upstream's `ns/name; group/version,
    /// Kind=kind`.
    #[error("failed to create typed patch object ({object}): {detail}")]
    TypedPatch { object: String, detail: String },
    /// 400: the applied `apiVersion` is not the object's.
    #[error("Incorrect version specified in apply patch. Specified patch version: {specified}, expected: {expected}")]
    VersionMismatch { specified: String, expected: String },
    /// 400: the applied `kind` is not the object's.
    #[error("Incorrect kind specified in apply patch. Specified patch kind: {specified}, expected: {expected}")]
    KindMismatch { specified: String, expected: String },
    /// 400: the applied `metadata.name` is not the object's.
    #[error(
        "the name of the object ({specified}) does not match the name on the URL ({expected})"
    )]
    NameMismatch { specified: String, expected: String },
    /// 400: an applied configuration may not carry managedFields.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// 500: the live object's managedFields cannot be decoded.
    #[error("failed to decode managed fields: {0}")]
    InvalidManagedFields(String),
}

impl ApplyError {
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflicts(_) => 409,
            ApplyError::InvalidManagedFields(_) | ApplyError::TypedPatch { .. } => 500,
            _ => 400,
        }
    }

    /// The `Status.message` upstream sends, e.g. `Apply failed with 1
    /// conflict: conflict with "kubectl-client-side-apply" using v1: .data.a`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The `Status` upstream answers with; a conflict carries one
    /// `FieldManagerConflict` cause per field.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ApplyError::Conflicts(conflicts) => {
                let mut err = ApiError::new(409, StatusReason::Conflict, self.message());
                err.details = Some(Box::new(StatusDetails {
                    causes: conflicts
                        .iter()
                        .map(|c| StatusCause {
                            reason: "FieldManagerConflict".into(),
                            message: format!("conflict with {}", c.manager_display),
                            field: c.field_path_string.clone(),
                        })
                        .collect(),
                    ..Default::default()
                }));
                err
            }
            ApplyError::InvalidManagedFields(_) | ApplyError::TypedPatch { .. } => {
                ApiError::internal(self.message())
            }
            _ => ApiError::bad_request(self.message()),
        }
    }
}

/// Upstream's `getConflictMessage`.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display, c.field_path_string
        );
    }
    let mut displays: Vec<&str> = conflicts
        .iter()
        .map(|c| c.manager_display.as_str())
        .collect();
    displays.sort_unstable();
    displays.dedup();
    let mut lines = Vec::new();
    for display in displays {
        lines.push(format!("conflicts with {display}:"));
        for c in conflicts.iter().filter(|c| c.manager_display == display) {
            lines.push(format!("- {}", c.field_path_string));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Checks an applied configuration against the resource it is applied to
/// (the URL's group/version, kind and name), with upstream's 400 messages.
/// An empty `name` skips the name check.
pub fn check_apply_target(
    config: &Value,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<(), ApplyError> {
    let specified = str_at(config, &["apiVersion"]);
    if specified != api_version {
        return Err(ApplyError::VersionMismatch {
            specified: specified.to_string(),
            expected: api_version.to_string(),
        });
    }
    let specified = str_at(config, &["kind"]);
    if specified != kind {
        return Err(ApplyError::KindMismatch {
            specified: specified.to_string(),
            expected: kind.to_string(),
        });
    }
    let specified = str_at(config, &["metadata", "name"]);
    if !name.is_empty() && !specified.is_empty() && specified != name {
        return Err(ApplyError::NameMismatch {
            specified: specified.to_string(),
            expected: name.to_string(),
        });
    }
    Ok(())
}

/// Upstream's `objectGVKNN`: `ns/name; group/version, Kind=kind` (the
/// core group is empty: `/v1`).
fn object_gvknn(obj: &Value) -> String {
    let api_version = str_at(obj, &["apiVersion"]);
    let group_version = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    format!(
        "{}/{}; {group_version}, Kind={}",
        str_at(obj, &["metadata", "namespace"]),
        str_at(obj, &["metadata", "name"]),
        str_at(obj, &["kind"])
    )
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut v = value;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

/// Server-side apply of `config` by `manager` to `live` (`None`: the
/// object is being created). Returns the new object, with
/// `metadata.managedFields` updated. `now` is the RFC 3339 time recorded
/// in the manager's entry.
///
/// When nothing but timestamps would change, the live object's
/// managedFields are kept as they were, as upstream does, so a no-op apply
/// writes nothing.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    meta: &dyn PatchMeta,
    now: &str,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::InvalidConfig(
            "apply patch must be a JSON object".into(),
        ));
    }
    if str_at(config, &["apiVersion"]).is_empty() || str_at(config, &["kind"]).is_empty() {
        return Err(ApplyError::InvalidConfig(
            "apply patch must specify apiVersion and kind".into(),
        ));
    }
    match config.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(_) => return Err(ApplyError::ManagedFieldsInConfig),
    }
    if let Some(live) = live {
        check_apply_target(
            config,
            str_at(live, &["apiVersion"]),
            str_at(live, &["kind"]),
            str_at(live, &["metadata", "name"]),
        )?;
    }
    let mut entries = match live.and_then(|l| l.pointer("/metadata/managedFields")) {
        Some(list) => decode_managed_fields(list).map_err(ApplyError::InvalidManagedFields)?,
        None => Vec::new(),
    };

    let mut cfg = config.clone();
    strip_unowned_values(&mut cfg);
    let applied = strip_ignored(FieldSet::try_from_object(&cfg, meta).map_err(|e| {
        ApplyError::TypedPatch {
            object: object_gvknn(config),
            detail: e.to_string(),
        }
    })?);
    let live_v = live.map(without_managed_fields);
    let base = live_v.clone().unwrap_or_else(|| Value::Object(Map::new()));
    let mut merged = merge(&base, &cfg, meta, &mut Vec::new(), 0);

    let api_version = str_at(config, &["apiVersion"]).to_string();
    let me = EntryId::apply(manager);
    let last = entries
        .iter()
        .find(|e| e.id() == me)
        .map(|e| e.set.clone())
        .unwrap_or_default();

    // Prune what the manager applied last time and nobody owns now.
    let mut owned = applied.clone();
    for e in entries.iter().filter(|e| e.id() != me) {
        owned = owned.union(&e.set);
    }
    let to_remove = last.difference(&owned);
    remove_disowned(
        &mut merged,
        &to_remove,
        Some(&owned),
        meta,
        &mut Vec::new(),
        0,
    );

    let cmp = compare_objects(live_v.as_ref(), &merged, meta);
    let changed = cmp.changed();
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| e.id() != me) {
        for path in e.set.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                manager_display: e.display(),
                field_path_string: path_string(&path),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        // Upstream visits managers in map order; sort them, keep each
        // manager's paths in set order.
        conflicts.sort_by(|a, b| a.manager_display.cmp(&b.manager_display));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for e in entries.iter_mut().filter(|e| e.id() != me) {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    entries.retain(|e| e.id() != me);
    entries.push(Entry {
        manager: manager.to_string(),
        operation: OPERATION_APPLY.to_string(),
        api_version,
        time: Some(now.to_string()),
        subresource: None,
        set: applied,
    });
    entries.retain(|e| !e.set.is_empty());
    set_managed_fields(&mut merged, entries, live);
    Ok(merged)
}

/// Records a non-apply write (create: `old` is `None`; update; patch) by
/// `manager` in `new`'s `metadata.managedFields`: the fields the write
/// changed become the manager's (operation `Update`, the new object's
/// `apiVersion`) and leave every other manager; fields it removed leave
/// everyone.
///
/// managedFields in `new` that differ from `old`'s replace them, as a
/// client may rewrite them; managedFields that cannot be decoded are
/// dropped (upstream resets them and logs).
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    now: &str,
    meta: &dyn PatchMeta,
) {
    if !new.is_object() {
        return;
    }
    let old_list = old.and_then(|o| o.pointer("/metadata/managedFields"));
    let new_list = new.pointer("/metadata/managedFields");
    let same_list = new_list == old_list;
    let rewritten = !same_list && matches!(new_list, Some(Value::Array(a)) if !a.is_empty());
    let source = if rewritten { new_list } else { old_list };
    if old.is_none() && source.is_none() {
        record_create(new, manager, now, meta);
        return;
    }
    // compare_objects never looks at managedFields.
    let (changed, removed) = compare_objects(old, new, meta).into_changed();
    if !rewritten && changed.is_empty() && removed.is_empty() {
        // Nothing anyone owns changed (a status write, say): the entries
        // stay as they are, without decoding and encoding them again.
        if !same_list {
            match old_list {
                Some(Value::Array(items)) if !items.is_empty() => {
                    put_managed_fields(new, items.clone())
                }
                _ => remove_managed_fields(new),
            }
        }
        return;
    }
    let mut entries = match source.map(decode_managed_fields) {
        Some(Ok(entries)) => entries,
        None => Vec::new(),
        Some(Err(_)) => {
            remove_managed_fields(new);
            return;
        }
    };

    let me = EntryId::update(manager, str_at(new, &["apiVersion"]));
    let mut previous = entries
        .iter()
        .find(|e| e.id() == me)
        .map(|e| e.set.clone())
        .unwrap_or_default();
    for e in entries.iter_mut() {
        e.set.subtract(&changed);
        e.set.subtract(&removed);
    }
    if !changed.is_empty() {
        entries.retain(|e| e.id() != me);
        previous.subtract(&removed);
        previous.absorb(changed);
        entries.push(Entry {
            manager: manager.to_string(),
            operation: OPERATION_UPDATE.to_string(),
            api_version: str_at(new, &["apiVersion"]).to_string(),
            time: Some(now.to_string()),
            subresource: None,
            set: previous,
        });
    }
    entries.retain(|e| !e.set.is_empty());
    set_managed_fields(new, entries, old);
}

/// [`record_update`] of a create that brings no managedFields: one entry,
/// `manager`'s, owning every field the object has, written as `FieldsV1`
/// while the object is walked (no [`FieldSet`] in between).
fn record_create(new: &mut Value, manager: &str, now: &str, meta: &dyn PatchMeta) {
    let mut fields = AddedFieldsV1::default();
    added(true, new, meta, &mut Vec::new(), 0, &mut fields);
    let fields = fields.strip_ignored();
    if fields.is_empty() {
        remove_managed_fields(new);
        return;
    }
    let entry = Entry {
        manager: manager.to_string(),
        operation: OPERATION_UPDATE.to_string(),
        api_version: str_at(new, &["apiVersion"]).to_string(),
        time: Some(now.to_string()),
        subresource: None,
        set: FieldSet::new(),
    };
    let mut encoded = entry.encode();
    encoded["fieldsV1"] = Value::Object(fields);
    put_managed_fields(new, vec![encoded]);
}

/// A decoded managedFields entry.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

/// What makes two entries the same manager, as upstream's manager
/// identifier: an `Update` entry per API version, one `Apply` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryId {
    manager: String,
    operation: String,
    api_version: Option<String>,
    subresource: Option<String>,
}

impl EntryId {
    fn apply(manager: &str) -> EntryId {
        EntryId {
            manager: manager.to_string(),
            operation: OPERATION_APPLY.to_string(),
            api_version: None,
            subresource: None,
        }
    }

    fn update(manager: &str, api_version: &str) -> EntryId {
        EntryId {
            manager: manager.to_string(),
            operation: OPERATION_UPDATE.to_string(),
            api_version: Some(api_version.to_string()),
            subresource: None,
        }
    }
}

impl Entry {
    fn id(&self) -> EntryId {
        EntryId {
            manager: self.manager.clone(),
            operation: self.operation.clone(),
            api_version: (self.operation != OPERATION_APPLY).then(|| self.api_version.clone()),
            subresource: self.subresource.clone(),
        }
    }

    /// Upstream's `printManager`.
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == OPERATION_UPDATE {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn encode(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::from(self.manager.clone()));
        m.insert("operation".into(), Value::from(self.operation.clone()));
        m.insert("apiVersion".into(), Value::from(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::from(t.clone()));
        }
        m.insert("fieldsType".into(), Value::from("FieldsV1"));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::from(s.clone()));
        }
        Value::Object(m)
    }
}

fn decode_managed_fields(list: &Value) -> Result<Vec<Entry>, String> {
    let items = match list {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err("managedFields must be a list".into()),
    };
    let mut entries: Vec<Entry> = Vec::new();
    for item in items {
        let obj = item
            .as_object()
            .ok_or("managedFields entry must be an object")?;
        let text = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("managedFields entry field {k} must be a string")),
            }
        };
        match text("fieldsType")?.as_deref() {
            Some("FieldsV1") => {}
            other => return Err(format!("invalid fieldsType {:?}", other.unwrap_or(""))),
        }
        let set = match obj.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v).map_err(|e| e.to_string())?,
        };
        let entry = Entry {
            manager: text("manager")?.unwrap_or_default(),
            operation: text("operation")?.unwrap_or_default(),
            api_version: text("apiVersion")?.unwrap_or_default(),
            time: text("time")?,
            subresource: text("subresource")?.filter(|s| !s.is_empty()),
            set,
        };
        if entries.iter().any(|e| e.id() == entry.id()) {
            return Err(format!("duplicate entries for manager {:?}", entry.manager));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Writes `entries` in upstream's order (operation, time, manager,
/// apiVersion, subresource); no entries means no `managedFields`. If the
/// result differs from `previous`'s managedFields only in timestamps and
/// the object is otherwise unchanged, `previous`'s are kept.
fn set_managed_fields(obj: &mut Value, mut entries: Vec<Entry>, previous: Option<&Value>) {
    entries.sort_by(|a, b| {
        (
            &a.operation,
            a.time.as_deref().unwrap_or(""),
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                b.time.as_deref().unwrap_or(""),
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let list: Vec<Value> = entries.iter().map(Entry::encode).collect();
    if let Some(previous) = previous {
        let prev_list = previous.pointer("/metadata/managedFields");
        if equal_but_managed_fields(previous, obj) {
            if let Some(prev_list) = prev_list {
                if strip_times(prev_list) == strip_times(&Value::Array(list.clone())) {
                    let prev_list = prev_list.clone();
                    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.insert("managedFields".into(), prev_list);
                    }
                    return;
                }
            }
        }
    }
    if list.is_empty() {
        remove_managed_fields(obj);
        return;
    }
    put_managed_fields(obj, list);
}

/// Sets `metadata.managedFields` to `list`.
fn put_managed_fields(obj: &mut Value, list: Vec<Value>) {
    if let Some(root) = obj.as_object_mut() {
        let metadata = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        if let Some(m) = metadata.as_object_mut() {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// managedFields entries without `time`, sorted, for comparing.
fn strip_times(list: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    if let Some(m) = e.as_object_mut() {
                        m.remove("time");
                    }
                    e
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|v| v.to_string());
    out
}

fn remove_managed_fields(obj: &mut Value) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
}

/// Whether `a` and `b` are equal once `metadata.managedFields` is left
/// out of both (compared in place, without copies).
fn equal_but_managed_fields(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if a.len() != b.len() {
        return false;
    }
    a.iter().all(|(k, av)| {
        let Some(bv) = b.get(k) else {
            return false;
        };
        match (k.as_str(), av.as_object(), bv.as_object()) {
            ("metadata", Some(am), Some(bm)) => {
                let fields = |m: &'_ Map<String, Value>| {
                    m.len() - usize::from(m.contains_key("managedFields"))
                };
                fields(am) == fields(bm)
                    && am
                        .iter()
                        .filter(|(k, _)| *k != "managedFields")
                        .all(|(k, v)| bm.get(k) == Some(v))
            }
            _ => av == bv,
        }
    })
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut obj = obj.clone();
    remove_managed_fields(&mut obj);
    obj
}

/// Drops what an applied configuration may not set: `status` and
/// `metadata.managedFields`.
fn strip_unowned_values(cfg: &mut Value) {
    if let Some(root) = cfg.as_object_mut() {
        root.remove("status");
    }
    remove_managed_fields(cfg);
}

/// Removes upstream's strip list and `status` from a set.
/// Top-level fields nobody owns (as members; what is below `metadata`
/// still counts).
const IGNORED_TOP_LEVEL: [&str; 3] = ["apiVersion", "kind", "metadata"];
/// Fields of `metadata` the server sets, owned by nobody.
const IGNORED_METADATA: [&str; 8] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "resourceVersion",
];

fn strip_ignored(mut set: FieldSet) -> FieldSet {
    let f = |s: &str| PathElement::Field(s.to_string());
    for top in IGNORED_TOP_LEVEL {
        set.remove(&[f(top)]);
    }
    for name in IGNORED_METADATA {
        set.remove(&[f("metadata"), f(name)]);
    }
    set.remove_subtree(&[f("metadata"), f("managedFields")]);
    set.remove_subtree(&[f("status")]);
    set
}

fn names_of(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// `live` with `config` merged in. Null fields of `config` set nothing.
fn merge(
    live: &Value,
    config: &Value,
    meta: &dyn PatchMeta,
    names: &mut Vec<String>,
    depth: usize,
) -> Value {
    if depth > MAX_DEPTH {
        return config.clone();
    }
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    continue;
                }
                names.push(k.clone());
                let v = match l.get(k) {
                    Some(lv) => merge(lv, cv, meta, names, depth + 1),
                    None => without_nulls(cv, depth + 1),
                };
                names.pop();
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let path = names_of(names);
            match (list_kind(meta, &path, l), list_kind(meta, &path, c)) {
                (Ok(ListKind::Set), Ok(ListKind::Set)) => {
                    let mut out = l.clone();
                    for item in c {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                (Ok(ListKind::Associative(keys)), Ok(ListKind::Associative(_))) => {
                    let config_keys: Vec<Option<PathElement>> =
                        c.iter().map(|i| item_key(i, &keys)).collect();
                    let mut out = Vec::with_capacity(l.len() + c.len());
                    let mut used = vec![false; c.len()];
                    for li in l {
                        let lk = item_key(li, &keys);
                        match config_keys.iter().position(|ck| ck.is_some() && *ck == lk) {
                            Some(i) => {
                                used[i] = true;
                                out.push(merge(li, &c[i], meta, names, depth + 1));
                            }
                            None => out.push(li.clone()),
                        }
                    }
                    for (i, ci) in c.iter().enumerate() {
                        if !used[i] {
                            out.push(without_nulls(ci, depth + 1));
                        }
                    }
                    Value::Array(out)
                }
                _ => without_nulls(config, depth),
            }
        }
        _ => without_nulls(config, depth),
    }
}

fn without_nulls(value: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return value.clone();
    }
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v, depth + 1)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| without_nulls(v, depth + 1)).collect())
        }
        other => other.clone(),
    }
}

/// Removes from `value` the members of `remove` at or under which nothing
/// is `owned`, as upstream's prune (remove, then add back what is owned).
fn remove_disowned(
    value: &mut Value,
    remove: &FieldSet,
    owned: Option<&FieldSet>,
    meta: &dyn PatchMeta,
    names: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH || remove.is_empty() {
        return;
    }
    let still_owned =
        |pe: &PathElement| owned.is_some_and(|o| o.contains_prefix(std::slice::from_ref(pe)));
    let drop = |pe: &PathElement| remove.has_member(pe) && !still_owned(pe);
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                if drop(&pe) {
                    map.remove(&k);
                } else if let (Some(child), Some(v)) = (remove.child(&pe), map.get_mut(&k)) {
                    names.push(k);
                    remove_disowned(
                        v,
                        child,
                        owned.and_then(|o| o.child(&pe)),
                        meta,
                        names,
                        depth + 1,
                    );
                    names.pop();
                }
            }
        }
        Value::Array(items) => {
            let path = names_of(names);
            match list_kind(meta, &path, items) {
                Ok(ListKind::Set) => {
                    items.retain(|i| !drop(&PathElement::Value(i.to_string())));
                }
                Ok(ListKind::Associative(keys)) => {
                    items.retain(|i| item_key(i, &keys).is_none_or(|pe| !drop(&pe)));
                    for item in items.iter_mut() {
                        let Some(pe) = item_key(item, &keys) else {
                            continue;
                        };
                        if let Some(child) = remove.child(&pe) {
                            remove_disowned(
                                item,
                                child,
                                owned.and_then(|o| o.child(&pe)),
                                meta,
                                names,
                                depth + 1,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// Upstream's `typed.Comparison`, with ignored fields stripped.
#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }

    /// What was added or modified, and what was removed.
    fn into_changed(self) -> (FieldSet, FieldSet) {
        let mut changed = self.added;
        changed.absorb(self.modified);
        (changed, self.removed)
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

fn compare_objects(old: Option<&Value>, new: &Value, meta: &dyn PatchMeta) -> Comparison {
    // A created object is compared with the empty object of its kind.
    let mut cmp = Comparison::default();
    compare(
        Some(old.unwrap_or(&EMPTY_MAP)),
        Some(new),
        meta,
        &mut Vec::new(),
        0,
        &mut cmp,
    );
    Comparison {
        added: strip_ignored(cmp.added),
        modified: strip_ignored(cmp.modified),
        removed: strip_ignored(cmp.removed),
    }
}

static EMPTY_MAP: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Map::new()));
static EMPTY_LIST: Value = Value::Array(Vec::new());

/// Fields a Go object decoded from `{}` already has (non-pointer structs,
/// lists without `omitempty`): adding content to them does not add the
/// field itself (no `"."`). An approximation of the Go types.
const PRESENT_WHEN_EMPTY: &[&str] = &[
    "metadata",
    "spec",
    "template",
    "jobTemplate",
    "strategy",
    "updateStrategy",
    "containers",
    "resources",
    "roleRef",
    "podSelector",
];

/// How a compared value itself changed: its parent records it as a member
/// of the matching set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Same,
    Added,
    Modified,
    Removed,
}

/// One step down in [`added`]'s walk: a map key (borrowed from the
/// object, never copied before it is written) or a list item's element.
enum Step<'a> {
    Field(&'a str),
    Element(&'a PathElement),
}

impl Step<'_> {
    /// The step's `FieldsV1` key, as [`PathElement::encode`] writes it.
    fn encode(&self) -> String {
        match self {
            Step::Field(name) => super::fieldset::prefixed("f:", name),
            Step::Element(pe) => pe.encode(),
        }
    }
}

/// The `FieldsV1` of a create, built by [`added`]'s walk of the new
/// object. Nothing can be modified or removed there, so what changed is
/// what was added, written straight into the document that
/// [`FieldSet::to_fields_v1`] would make of it.
///
/// Each level's entries are collected in a list and made into a map once,
/// which sorts them in one go (they mostly arrive in order) instead of
/// searching the map for every insert.
#[derive(Default)]
struct AddedFieldsV1(Vec<(String, Value)>);

impl AddedFieldsV1 {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Record what the walk found at `step`: `change` for the value
    /// itself, `below` for the paths under it.
    fn attach(&mut self, step: Step<'_>, change: Change, below: AddedFieldsV1) {
        let member = change != Change::Same;
        let mut inner = below.0;
        if member || !inner.is_empty() {
            if member && !inner.is_empty() {
                inner.push((".".to_string(), Value::Object(Map::new())));
            }
            self.0
                .push((step.encode(), Value::Object(inner.into_iter().collect())));
        }
    }

    /// A member of a set-list.
    fn set_member(&mut self, pe: PathElement) {
        self.0.push((pe.encode(), Value::Object(Map::new())));
    }

    /// [`strip_ignored`] on the document.
    fn strip_ignored(self) -> Map<String, Value> {
        // A member only: its `"."` goes, or the whole key if nothing is
        // below it.
        fn drop_member(map: &mut Map<String, Value>, key: &str) {
            if let Some(Value::Object(inner)) = map.get_mut(key) {
                if inner.keys().all(|k| k == ".") {
                    map.remove(key);
                } else {
                    inner.remove(".");
                }
            }
        }
        let mut document: Map<String, Value> = self.0.into_iter().collect();
        let map = &mut document;
        if let Some(Value::Object(metadata)) = map.get_mut("f:metadata") {
            for name in IGNORED_METADATA {
                drop_member(metadata, &format!("f:{name}"));
            }
            metadata.remove("f:managedFields");
            if metadata.is_empty() {
                map.remove("f:metadata");
            }
        }
        for top in IGNORED_TOP_LEVEL {
            drop_member(map, &format!("f:{top}"));
        }
        map.remove("f:status");
        document
    }
}

impl Comparison {
    /// Record what comparing the value at `pe` found: `change` for the
    /// value itself, `below` for the paths under it.
    fn attach(&mut self, pe: PathElement, change: Change, below: Comparison) {
        let Comparison {
            added,
            modified,
            removed,
        } = self;
        let mut targets = [
            (added, below.added, change == Change::Added),
            (modified, below.modified, change == Change::Modified),
            (removed, below.removed, change == Change::Removed),
        ];
        // `pe` is cloned only for the places it goes beyond the last one.
        let uses = targets
            .iter()
            .map(|(_, sub, member)| usize::from(*member) + usize::from(!sub.is_empty()))
            .sum::<usize>();
        let mut pe = Some(pe);
        let mut left = uses;
        let mut take = |pe: &mut Option<PathElement>| {
            left -= 1;
            if left == 0 {
                pe.take()
            } else {
                pe.clone()
            }
        };
        for (set, sub, member) in targets.iter_mut() {
            if *member {
                if let Some(p) = take(&mut pe) {
                    set.insert_member(p);
                }
            }
            if !sub.is_empty() {
                if let Some(p) = take(&mut pe) {
                    set.insert_child(p, std::mem::take(sub));
                }
            }
        }
    }
}

/// The keys of two maps, each once, in order: serde_json's maps (without
/// its `preserve_order` feature) iterate sorted by key.
fn merged_keys<'a>(
    a: Option<&'a Map<String, Value>>,
    b: Option<&'a Map<String, Value>>,
) -> impl Iterator<Item = &'a String> {
    let mut a = a.into_iter().flat_map(Map::keys).peekable();
    let mut b = b.into_iter().flat_map(Map::keys).peekable();
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) => match x.cmp(y) {
            std::cmp::Ordering::Less => a.next(),
            std::cmp::Ordering::Greater => b.next(),
            std::cmp::Ordering::Equal => {
                b.next();
                a.next()
            }
        },
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
}

/// Compares `old` with `new`; the paths that changed below them go into
/// `below` (relative to this value), and the value's own change is
/// returned. The sets are built bottom-up, each level inserted once.
/// `status` and `metadata.managedFields` are never tracked and are
/// skipped rather than compared.
fn compare<'a>(
    old: Option<&'a Value>,
    new: Option<&'a Value>,
    meta: &dyn PatchMeta,
    names: &mut Vec<&'a str>,
    depth: usize,
    below: &mut Comparison,
) -> Change {
    let leaf = || match (old, new) {
        (None, Some(_)) => Change::Added,
        (Some(_), None) => Change::Removed,
        (Some(a), Some(b)) if a != b => Change::Modified,
        _ => Change::Same,
    };
    // Equal values hold no change at any depth; checking that is cheaper
    // than walking them (an update leaves most of an object as it was).
    if depth > MAX_DEPTH || matches!((old, new), (Some(a), Some(b)) if a == b) {
        return leaf();
    }
    let is_map = |v: Option<&Value>| v.is_none_or(Value::is_object);
    let is_list = |v: Option<&Value>| v.is_none_or(Value::is_array);
    if old.is_none() && new.is_none() {
        return Change::Same;
    }
    if is_map(old) && is_map(new) {
        let lo = old.and_then(Value::as_object);
        let ro = new.and_then(Value::as_object);
        if lo.is_none_or(Map::is_empty) && ro.is_none_or(Map::is_empty) {
            return leaf();
        }
        let keys = merged_keys(lo, ro);
        let in_metadata = depth == 1 && names.first() == Some(&"metadata");
        for k in keys {
            if (depth == 0 && k == "status") || (in_metadata && k == "managedFields") {
                continue;
            }
            let mut lc = lo.and_then(|m| m.get(k));
            let rc = ro.and_then(|m| m.get(k));
            if lc.is_none() && old.is_some() && PRESENT_WHEN_EMPTY.contains(&k.as_str()) {
                lc = match rc {
                    Some(Value::Object(_)) => Some(&*EMPTY_MAP),
                    Some(Value::Array(_)) => Some(&EMPTY_LIST),
                    _ => None,
                };
            }
            names.push(k.as_str());
            let mut sub = Comparison::default();
            let change = compare(lc, rc, meta, names, depth + 1, &mut sub);
            names.pop();
            if change != Change::Same || !sub.is_empty() {
                below.attach(PathElement::Field(k.clone()), change, sub);
            }
        }
    } else if is_list(old) && is_list(new) {
        let la = old.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let ra = new.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        if la.is_empty() && ra.is_empty() {
            return leaf();
        }
        let kind = match (list_kind(meta, names, la), list_kind(meta, names, ra)) {
            (Ok(a), Ok(b)) if a == b => a,
            _ => ListKind::Atomic,
        };
        match kind {
            ListKind::Atomic => return leaf(),
            ListKind::Set => {
                for item in la.iter().filter(|i| !ra.contains(i)) {
                    below
                        .removed
                        .insert_member(PathElement::Value(item.to_string()));
                }
                for item in ra.iter().filter(|i| !la.contains(i)) {
                    below
                        .added
                        .insert_member(PathElement::Value(item.to_string()));
                }
            }
            ListKind::Associative(keys) => {
                let lk: Vec<(PathElement, &'a Value)> = la
                    .iter()
                    .filter_map(|i| item_key(i, &keys).map(|k| (k, i)))
                    .collect();
                let rk: Vec<(PathElement, &'a Value)> = ra
                    .iter()
                    .filter_map(|i| item_key(i, &keys).map(|k| (k, i)))
                    .collect();
                let find = |list: &[(PathElement, &'a Value)], k: &PathElement| -> Option<usize> {
                    list.iter().position(|(pk, _)| pk == k)
                };
                for (k, li) in &lk {
                    let ri = find(&rk, k).map(|i| rk[i].1);
                    let mut sub = Comparison::default();
                    let change = compare(Some(li), ri, meta, names, depth + 1, &mut sub);
                    if change != Change::Same || !sub.is_empty() {
                        below.attach(k.clone(), change, sub);
                    }
                }
                for (k, ri) in &rk {
                    if find(&lk, k).is_none() {
                        let mut sub = Comparison::default();
                        let change = compare(None, Some(ri), meta, names, depth + 1, &mut sub);
                        if change != Change::Same || !sub.is_empty() {
                            below.attach(k.clone(), change, sub);
                        }
                    }
                }
            }
        }
    } else {
        return leaf();
    }
    // A map or list that appears or disappears is itself added or removed
    // (the root is no member of anything).
    if depth == 0 {
        Change::Same
    } else if old.is_none() {
        Change::Added
    } else if new.is_none() {
        Change::Removed
    } else {
        Change::Same
    }
}

/// What [`compare`] records comparing `new` with nothing (`old_empty`
/// false) or, as at the root of a create and in [`PRESENT_WHEN_EMPTY`]
/// fields below it, with an empty map or list (`old_empty` true). Every
/// field of `new` is added, so nothing is compared, and each associative
/// list's items are keyed once.
fn added<'a>(
    old_empty: bool,
    new: &'a Value,
    meta: &dyn PatchMeta,
    names: &mut Vec<&'a str>,
    depth: usize,
    below: &mut AddedFieldsV1,
) -> Change {
    // `compare`'s answer for a value it does not descend into; an empty
    // container equals the empty one it is compared with.
    let leaf = |empty: bool| match (old_empty, empty) {
        (false, _) => Change::Added,
        (true, true) => Change::Same,
        (true, false) => Change::Modified,
    };
    // ...and for a map or list it descends into.
    let container = if depth == 0 || old_empty {
        Change::Same
    } else {
        Change::Added
    };
    let empty_container = match new {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if depth > MAX_DEPTH || empty_container {
        return leaf(empty_container);
    }
    match new {
        Value::Object(map) => {
            let in_metadata = depth == 1 && names.first() == Some(&"metadata");
            for (k, v) in map {
                if (depth == 0 && k == "status") || (in_metadata && k == "managedFields") {
                    continue;
                }
                let child_empty = old_empty
                    && (v.is_object() || v.is_array())
                    && PRESENT_WHEN_EMPTY.contains(&k.as_str());
                names.push(k.as_str());
                let mut sub = AddedFieldsV1::default();
                let change = added(child_empty, v, meta, names, depth + 1, &mut sub);
                names.pop();
                if change != Change::Same || !sub.is_empty() {
                    below.attach(Step::Field(k), change, sub);
                }
            }
        }
        Value::Array(items) => match meta.list_strategy(names) {
            ListStrategy::Replace => return leaf(false),
            ListStrategy::MergePrimitives => {
                if items.iter().any(|i| i.is_object() || i.is_array()) {
                    return leaf(false);
                }
                for item in items {
                    below.set_member(PathElement::Value(item.to_string()));
                }
            }
            ListStrategy::MergeByKey(_) => {
                let keys = list_keys(meta, names).unwrap_or_default();
                let keyed: Option<Vec<(PathElement, &Value)>> = items
                    .iter()
                    .map(|item| item_key(item, &keys).map(|k| (k, item)))
                    .collect();
                // Items without their key or with a repeated one make the
                // list atomic, as `list_kind` says.
                let Some(keyed) = keyed else {
                    return leaf(false);
                };
                let mut seen = std::collections::BTreeSet::new();
                if !keyed.iter().all(|(k, _)| seen.insert(k)) {
                    return leaf(false);
                }
                for (k, item) in &keyed {
                    let mut sub = AddedFieldsV1::default();
                    let change = added(false, item, meta, names, depth + 1, &mut sub);
                    if change != Change::Same || !sub.is_empty() {
                        below.attach(Step::Element(k), change, sub);
                    }
                }
            }
        },
        _ => return leaf(false),
    }
    container
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
