//! Sets of field paths, as server-side apply tracks ownership, and their
//! `FieldsV1` encoding in `metadata.managedFields`.
//!
//! This is upstream's `sigs.k8s.io/structured-merge-diff` `fieldpath.Set`.
//! A path is a list of [`PathElement`]s: a field name (`f:name`), an item of
//! an associative list by its key fields (`k:{"name":"web"}`), a member of a
//! set (`v:"foo"`), or a list index (`i:0`, only ever read, never produced).
//! A set holds *members* (the paths it owns) and *children* (paths below
//! which it owns something); `FieldsV1` writes a path that is both a member
//! and a parent as `".": {}` inside the child.
//!
//! List semantics come from [`PatchMeta`]: merge-by-key lists are
//! associative, primitive-merge lists are sets, every other list is atomic
//! (owned as a whole). Limitation: upstream's schemas give a few
//! associative lists several keys; [`list_keys`] knows the common ones
//! (container and service ports, topology spread constraints) and uses the
//! single strategic-merge key for the rest. Maps are always granular: the
//! few structs upstream marks atomic (`x-kubernetes-map-type: atomic`, e.g.
//! label selectors) are owned field by field here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::patch_meta::{ListStrategy, PatchMeta};

/// How deep a value or `FieldsV1` document may nest before it is refused
/// (or, where no error can be returned, treated as a leaf).
pub const MAX_DEPTH: usize = 256;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of a map: `f:<name>`.
    Field(String),
    /// An item of an associative list, by the compact JSON object of its
    /// key fields (keys sorted): `k:<json>`.
    Key(String),
    /// A member of a set, by its compact JSON: `v:<json>`.
    Value(String),
    /// An item of a list by position: `i:<index>`.
    Index(i64),
}

impl PathElement {
    /// The element's `FieldsV1` key (`f:name`, `k:{...}`, `v:...`, `i:0`).
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => prefixed("f:", name),
            PathElement::Key(json) => prefixed("k:", json),
            PathElement::Value(json) => prefixed("v:", json),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key; JSON in keys and values is normalised.
    pub fn decode(s: &str) -> Result<PathElement, FieldSetError> {
        let bad = || FieldSetError::InvalidPathElement(s.to_string());
        let (prefix, rest) = s.split_at_checked(2).ok_or_else(bad)?;
        match prefix {
            "f:" => Ok(PathElement::Field(rest.to_string())),
            "k:" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(map)) if !map.is_empty() => {
                    Ok(PathElement::Key(Value::Object(map).to_string()))
                }
                _ => Err(bad()),
            },
            "v:" => serde_json::from_str::<Value>(rest)
                .map(|v| PathElement::Value(v.to_string()))
                .map_err(|_| bad()),
            "i:" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }

    /// Upstream's `PathElement.String()`: `.name`, `[name="web"]`,
    /// `[="foo"]`, `[0]`.
    pub fn display(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(json) => match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(map)) => {
                    let parts: Vec<String> = map
                        .iter()
                        .map(|(k, v)| format!("{k}={}", value_to_string(v)))
                        .collect();
                    format!("[{}]", parts.join(","))
                }
                _ => format!("[{json}]"),
            },
            PathElement::Value(json) => match serde_json::from_str::<Value>(json) {
                Ok(v) => format!("[={}]", value_to_string(&v)),
                Err(_) => format!("[={json}]"),
            },
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

/// `prefix` then `text`, built by hand: `FieldsV1` keys are made for
/// every field of every written object.
pub(crate) fn prefixed(prefix: &str, text: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + text.len());
    out.push_str(prefix);
    out.push_str(text);
    out
}

/// Upstream's `value.ToString`: strings quoted, everything else as JSON.
fn value_to_string(v: &Value) -> String {
    v.to_string()
}

/// A field path from the object's root.
pub type FieldPath = Vec<PathElement>;

/// Upstream's `fieldpath.Path.String()`, e.g.
/// `.spec.containers[name="web"].image`, as conflict messages print it.
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

/// Why a `FieldsV1` document or an applied object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSetError {
    #[error("invalid path element {0:?}")]
    InvalidPathElement(String),
    #[error("FieldsV1 must be a JSON object at {0}")]
    NotAnObject(String),
    #[error("FieldsV1 nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// An item of an associative list lacks a key field (or is not an
    /// object).
    #[error("{path}: element {index}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)")]
    MissingKey {
        path: String,
        index: usize,
        key: String,
    },
    /// Two items of an associative list with one key; `key` is printed as
    /// upstream does, e.g. `[name="a"]`.
    #[error("{path}: duplicate entries for key {key}")]
    DuplicateKey { path: String, key: String },
}

/// A set of field paths. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds `path` as a member. The empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        let mut set = self;
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        for pe in parents {
            if !set.children.contains_key(pe) {
                set.children.insert(pe.clone(), FieldSet::default());
            }
            set = set.children.get_mut(pe).expect("inserted above");
        }
        if !set.members.contains(last) {
            set.members.insert(last.clone());
        }
    }

    /// Adds `pe` as a member at this level.
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        self.members.insert(pe);
    }

    /// Puts `set` below `pe` (joined with what is there already); an empty
    /// set adds nothing.
    pub(crate) fn insert_child(&mut self, pe: PathElement, set: FieldSet) {
        if set.is_empty() {
            return;
        }
        match self.children.entry(pe) {
            std::collections::btree_map::Entry::Occupied(mut existing) => {
                existing.get_mut().absorb(set)
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(set);
            }
        }
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut set = self;
        for pe in parents {
            match set.children.get(pe) {
                Some(child) => set = child,
                None => return false,
            }
        }
        set.members.contains(last)
    }

    /// Whether `path` or any path below it is a member.
    pub fn contains_prefix(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return !self.is_empty();
        };
        let mut set = self;
        for pe in parents {
            match set.children.get(pe) {
                Some(child) => set = child,
                None => return false,
            }
        }
        set.members.contains(last) || set.children.contains_key(last)
    }

    /// The set below `pe`, if any.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    /// Whether `pe` itself is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// Removes `path` and everything below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            *self = FieldSet::new();
            return;
        };
        if rest.is_empty() {
            self.members.remove(first);
            self.children.remove(first);
            return;
        }
        if let Some(child) = self.children.get_mut(first) {
            child.remove_subtree(rest);
            if child.is_empty() {
                self.children.remove(first);
            }
        }
    }

    /// Removes the member `path` only (paths below it stay).
    pub fn remove(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            self.members.remove(first);
            return;
        }
        if let Some(child) = self.children.get_mut(first) {
            child.remove(rest);
            if child.is_empty() {
                self.children.remove(first);
            }
        }
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    /// `self` joined with `other`, taking `other`'s paths over without
    /// copying them.
    pub fn absorb(&mut self, mut other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        if self.members.len() < other.members.len() {
            std::mem::swap(&mut self.members, &mut other.members);
        }
        self.members.append(&mut other.members);
        for (pe, child) in other.children {
            self.insert_child(pe, child);
        }
    }

    /// Removes the paths of `other` as [`FieldSet::difference`] does, in
    /// place.
    pub fn subtract(&mut self, other: &FieldSet) {
        if !other.members.is_empty() {
            self.members.retain(|m| !other.members.contains(m));
        }
        self.children.retain(|pe, child| {
            if let Some(o) = other.children.get(pe) {
                child.subtract(o);
            }
            !child.is_empty()
        });
    }

    fn union_in_place(&mut self, other: &FieldSet) {
        self.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_in_place(child);
        }
    }

    /// The paths of `self` that are not in `other` (member by member, as
    /// upstream's `Set.Difference`: a member of `other` does not remove
    /// what `self` holds below it).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let child = match other.children.get(pe) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            if !child.is_empty() {
                children.insert(pe.clone(), child);
            }
        }
        FieldSet { members, children }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(o) = other.children.get(pe) {
                let child = child.intersection(o);
                if !child.is_empty() {
                    children.insert(pe.clone(), child);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Every member path, in upstream's iteration order.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    /// Upstream's `Set.Iterate` order: this level's members, then each
    /// child's paths.
    fn collect_paths(&self, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        for pe in &self.members {
            prefix.push(pe.clone());
            out.push(prefix.clone());
            prefix.pop();
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for pe in &self.members {
            map.insert(pe.encode(), Value::Object(Map::new()));
        }
        for (pe, child) in &self.children {
            let mut inner = match child.to_fields_v1() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            if self.members.contains(pe) {
                inner.insert(".".to_string(), Value::Object(Map::new()));
            }
            map.insert(pe.encode(), Value::Object(inner));
        }
        Value::Object(map)
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldSetError> {
        fn parse(value: &Value, depth: usize, at: &str) -> Result<FieldSet, FieldSetError> {
            if depth > MAX_DEPTH {
                return Err(FieldSetError::TooDeep);
            }
            let Value::Object(map) = value else {
                return Err(FieldSetError::NotAnObject(at.to_string()));
            };
            let mut set = FieldSet::new();
            for (key, inner) in map {
                if key == "." {
                    continue;
                }
                let pe = PathElement::decode(key)?;
                let Value::Object(inner_map) = inner else {
                    return Err(FieldSetError::NotAnObject(key.clone()));
                };
                if inner_map.is_empty() || inner_map.contains_key(".") {
                    set.members.insert(pe.clone());
                }
                if inner_map.keys().any(|k| k != ".") {
                    let child = parse(inner, depth + 1, key)?;
                    if !child.is_empty() {
                        set.children.insert(pe, child);
                    }
                }
            }
            Ok(set)
        }
        parse(value, 0, "root")
    }

    /// The fields an applied configuration sets: every leaf (scalar,
    /// atomic list, empty map), every associative-list item and every set
    /// member. Null values set nothing. Items that do not fit their list's
    /// semantics make the list atomic; see [`FieldSet::try_from_object`]
    /// for the strict variant apply uses.
    pub fn from_object(obj: &Value, meta: &dyn PatchMeta) -> FieldSet {
        let mut walker = ToFieldSet {
            meta,
            strict: false,
            set: FieldSet::new(),
        };
        let _ = walker.walk(obj, &mut Vec::new(), &mut Vec::new(), 0);
        walker.set
    }

    /// As [`FieldSet::from_object`], but an associative-list item without
    /// its key, or two items with one key, is an error, as upstream refuses
    /// such an applied configuration.
    pub fn try_from_object(obj: &Value, meta: &dyn PatchMeta) -> Result<FieldSet, FieldSetError> {
        let mut walker = ToFieldSet {
            meta,
            strict: true,
            set: FieldSet::new(),
        };
        walker.walk(obj, &mut Vec::new(), &mut Vec::new(), 0)?;
        Ok(walker.set)
    }
}

struct ToFieldSet<'a> {
    meta: &'a dyn PatchMeta,
    strict: bool,
    set: FieldSet,
}

impl ToFieldSet<'_> {
    fn walk(
        &mut self,
        value: &Value,
        path: &mut FieldPath,
        names: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), FieldSetError> {
        if depth > MAX_DEPTH {
            self.set.insert(path);
            return Ok(());
        }
        match value {
            Value::Object(map) if map.is_empty() => self.set.insert(path),
            Value::Object(map) => {
                for (k, v) in map {
                    if v.is_null() {
                        continue;
                    }
                    path.push(PathElement::Field(k.clone()));
                    names.push(k.clone());
                    let r = self.walk(v, path, names, depth + 1);
                    names.pop();
                    path.pop();
                    r?;
                }
            }
            Value::Array(items) => {
                let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
                match list_kind(self.meta, &name_refs, items) {
                    Ok(ListKind::Atomic) => self.set.insert(path),
                    Ok(ListKind::Set) => {
                        if items.is_empty() {
                            self.set.insert(path);
                        }
                        for item in items {
                            path.push(PathElement::Value(item.to_string()));
                            self.set.insert(path);
                            path.pop();
                        }
                    }
                    Ok(ListKind::Associative(keys)) => {
                        if items.is_empty() {
                            self.set.insert(path);
                        }
                        for item in items {
                            let Some(pe) = item_key(item, &keys) else {
                                continue;
                            };
                            path.push(pe);
                            self.set.insert(path);
                            let r = self.walk(item, path, names, depth + 1);
                            path.pop();
                            r?;
                        }
                    }
                    Err(e) => {
                        if self.strict {
                            return Err(e.at(&path_string(path)));
                        }
                        self.set.insert(path);
                    }
                }
            }
            _ => self.set.insert(path),
        }
        Ok(())
    }
}

/// The key fields of an associative list, each with the default an item
/// may leave it to.
pub type ListKeys = Vec<(String, Option<&'static str>)>;

/// A list's semantics for server-side apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Owned as a whole.
    Atomic,
    /// A set of scalars, owned member by member.
    Set,
    /// Items owned by their key fields (with the default of a key field
    /// an item may omit).
    Associative(ListKeys),
}

/// Why a list's items do not fit its declared semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListShapeError {
    MissingKey(String, usize),
    DuplicateKey(String),
}

impl ListShapeError {
    fn at(self, path: &str) -> FieldSetError {
        match self {
            ListShapeError::MissingKey(key, index) => FieldSetError::MissingKey {
                path: path.to_string(),
                index,
                key,
            },
            ListShapeError::DuplicateKey(key) => FieldSetError::DuplicateKey {
                path: path.to_string(),
                key,
            },
        }
    }
}

/// The key fields of the associative list at `path` (field names from
/// the root), or `None` if it is not associative. Upstream's
/// `x-kubernetes-list-map-keys` where they differ from the strategic merge
/// key; `protocol` defaults to `TCP` as upstream's schema declares.
pub fn list_keys(meta: &dyn PatchMeta, path: &[&str]) -> Option<ListKeys> {
    let ListStrategy::MergeByKey(key) = meta.list_strategy(path) else {
        return None;
    };
    let last = path.last().copied().unwrap_or_default();
    Some(match (last, key.as_ref()) {
        ("ports", "containerPort") => vec![
            ("containerPort".to_string(), None),
            ("protocol".to_string(), Some("TCP")),
        ],
        ("ports", "port") => vec![
            ("port".to_string(), None),
            ("protocol".to_string(), Some("TCP")),
        ],
        ("topologySpreadConstraints", "topologyKey") => vec![
            ("topologyKey".to_string(), None),
            ("whenUnsatisfiable".to_string(), None),
        ],
        (_, key) => vec![(key.to_string(), None)],
    })
}

/// The semantics of the list at `path`, checked against its items.
pub(crate) fn list_kind(
    meta: &dyn PatchMeta,
    path: &[&str],
    items: &[Value],
) -> Result<ListKind, ListShapeError> {
    match meta.list_strategy(path) {
        ListStrategy::Replace => Ok(ListKind::Atomic),
        ListStrategy::MergePrimitives => {
            if items.iter().all(|i| !i.is_object() && !i.is_array()) {
                Ok(ListKind::Set)
            } else {
                Ok(ListKind::Atomic)
            }
        }
        ListStrategy::MergeByKey(_) => {
            let keys = list_keys(meta, path).unwrap_or_default();
            let mut seen = BTreeSet::new();
            for (index, item) in items.iter().enumerate() {
                let Some(pe) = item_key(item, &keys) else {
                    let missing = keys
                        .iter()
                        .find(|(k, d)| d.is_none() && item.get(k).is_none_or(Value::is_null))
                        .map_or("name", |(k, _)| k.as_str());
                    return Err(ListShapeError::MissingKey(missing.to_string(), index));
                };
                if !seen.insert(pe.clone()) {
                    return Err(ListShapeError::DuplicateKey(path_string(&[pe])));
                }
            }
            Ok(ListKind::Associative(keys))
        }
    }
}

/// The [`PathElement::Key`] of an associative-list item, or `None` if it is
/// not an object or lacks a key field that has no default.
pub fn item_key(item: &Value, keys: &[(String, Option<&'static str>)]) -> Option<PathElement> {
    let obj = item.as_object()?;
    if keys.is_empty() {
        return None;
    }
    // The key is the JSON object of the key fields, names sorted; it is
    // written directly rather than built as a map and encoded.
    let mut fields: Vec<(&str, Result<&Value, &str>)> = Vec::with_capacity(keys.len());
    for (name, default) in keys {
        match (obj.get(name), default) {
            (Some(v), _) if !v.is_null() && !v.is_object() && !v.is_array() => {
                fields.push((name, Ok(v)));
            }
            (None | Some(Value::Null), Some(d)) => fields.push((name, Err(d))),
            _ => return None,
        }
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    fields.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut out = Vec::with_capacity(16 * fields.len() + 2);
    out.push(b'{');
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name).ok()?;
        out.push(b':');
        match value {
            Ok(v) => serde_json::to_writer(&mut out, v),
            Err(d) => serde_json::to_writer(&mut out, d),
        }
        .ok()?;
    }
    out.push(b'}');
    String::from_utf8(out).ok().map(PathElement::Key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::builtin_meta;
    use serde_json::json;

    fn pod_meta() -> impl PatchMeta {
        builtin_meta("v1", "Pod").expect("pods are built in")
    }

    #[test]
    fn an_item_key_is_the_sorted_json_object_of_its_key_fields() {
        let keys: ListKeys = vec![
            ("protocol".to_string(), Some("TCP")),
            ("containerPort".to_string(), None),
            ("name\"q".to_string(), Some("d\u{e9}")),
        ];
        let item = json!({"containerPort": 8080, "protocol": "UDP", "hostIP": "x"});
        let Some(PathElement::Key(key)) = item_key(&item, &keys) else {
            panic!("no key");
        };
        let expected = json!({"containerPort": 8080, "protocol": "UDP", "name\"q": "d\u{e9}"});
        assert_eq!(key, expected.to_string());
        let defaulted = item_key(&json!({"containerPort": 1, "protocol": null}), &keys[..2]);
        assert_eq!(
            defaulted,
            Some(PathElement::Key(
                r#"{"containerPort":1,"protocol":"TCP"}"#.to_string()
            ))
        );
        assert_eq!(item_key(&json!({"protocol": "TCP"}), &keys), None);
        assert_eq!(item_key(&json!({"containerPort": [1]}), &keys), None);
        assert_eq!(item_key(&json!("scalar"), &keys), None);
    }

    #[test]
    fn fields_v1_round_trips_upstream_encoding() {
        let doc = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {"v:\"a\"": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}
        });
        let set = FieldSet::from_fields_v1(&doc).expect("valid");
        assert_eq!(set.to_fields_v1(), doc);
        assert!(set.contains(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("labels".into())
        ]));
        assert_eq!(set.paths().len(), 6);
    }

    #[test]
    fn from_object_sets_leaves_items_and_set_members() {
        let pod = json!({
            "metadata": {"labels": {"app": "a"}, "finalizers": ["x"]},
            "spec": {"containers": [{"name": "web", "image": "nginx", "args": ["a"],
                     "ports": [{"containerPort": 80}]}]}
        });
        let set = FieldSet::from_object(&pod, &pod_meta());
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                        ".": {}, "f:containerPort": {}}}
                }}}
            })
        );
    }

    #[test]
    fn set_operations_work_member_by_member() {
        let a = FieldSet::from_fields_v1(&json!({"f:a": {}, "f:b": {"f:c": {}, "f:d": {}}}))
            .expect("valid");
        let b = FieldSet::from_fields_v1(&json!({"f:b": {".": {}, "f:c": {}}})).expect("valid");
        assert_eq!(
            a.difference(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {"f:d": {}}})
        );
        assert_eq!(
            a.intersection(&b).to_fields_v1(),
            json!({"f:b": {"f:c": {}}})
        );
        assert_eq!(
            a.union(&b).to_fields_v1(),
            json!({"f:a": {}, "f:b": {".": {}, "f:c": {}, "f:d": {}}})
        );
    }

    #[test]
    fn path_strings_match_upstream() {
        let path = vec![
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(r#"{"name":"web"}"#.into()),
            PathElement::Field("image".into()),
        ];
        assert_eq!(path_string(&path), r#".spec.containers[name="web"].image"#);
        assert_eq!(
            path_string(&[PathElement::Value("\"x\"".into())]),
            r#"[="x"]"#
        );
        assert_eq!(path_string(&[PathElement::Index(3)]), "[3]");
    }

    #[test]
    fn malformed_fields_v1_is_an_error_not_a_panic() {
        for doc in [
            json!([]),
            json!({"x:a": {}}),
            json!({"f:a": 1}),
            json!({"k:[1]": {}}),
            json!({"k:{}": {}}),
            json!({"i:x": {}}),
            json!({"v:{": {}}),
            json!({"": {}}),
            json!({"é": {}}),
        ] {
            assert!(FieldSet::from_fields_v1(&doc).is_err(), "{doc}");
        }
        let mut deep = json!({});
        for _ in 0..400 {
            deep = json!({ "f:a": deep });
        }
        assert_eq!(FieldSet::from_fields_v1(&deep), Err(FieldSetError::TooDeep));
    }

    #[test]
    fn associative_item_without_key_is_strict_error_or_atomic() {
        let pod = json!({"spec": {"containers": [{"image": "x"}]}});
        assert_eq!(
            FieldSet::try_from_object(&pod, &pod_meta())
                .expect_err("no name")
                .to_string(),
            ".spec.containers: element 0: associative list with keys has an element \
             that omits key field \"name\" (and doesn't have default value)"
        );
        assert_eq!(
            FieldSet::from_object(&pod, &pod_meta()).to_fields_v1(),
            json!({"f:spec": {"f:containers": {}}})
        );
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        assert_eq!(
            FieldSet::try_from_object(&dup, &pod_meta())
                .expect_err("duplicate")
                .to_string(),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
    }

    #[test]
    fn deep_objects_do_not_overflow() {
        let mut deep = json!(1);
        for _ in 0..2000 {
            deep = json!({ "a": deep });
        }
        let set = FieldSet::from_object(&deep, &pod_meta());
        assert!(!set.is_empty());
    }
}
