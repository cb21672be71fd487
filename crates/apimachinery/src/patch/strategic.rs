//! Kubernetes strategic merge patch (`application/strategic-merge-patch+json`).
//!
//! Maps merge as in a JSON merge patch (`null` deletes). Lists follow the
//! strategy a [`PatchMeta`] gives for their field path: lists of objects
//! with a merge key (a pod's `containers` by `name`) merge element by
//! element, lists of primitives with strategy merge (`metadata.finalizers`)
//! are unioned, and every other list is replaced.
//!
//! Directives, as upstream defines them:
//! - `"$patch": "replace"` in a map replaces the map with the rest of the
//!   patch map; `"$patch": "delete"` empties it. As a list element,
//!   `{"$patch": "replace"}` replaces the whole list with the patch's other
//!   elements, and `{"$patch": "delete", <key>: <value>}` removes the
//!   elements with that key.
//! - `"$retainKeys": [...]` drops every key of the original map not listed
//!   (used with the `retainKeys` strategy, e.g. a volume's source).
//! - `"$deleteFromPrimitiveList/<field>": [...]` removes those values from a
//!   merged list of primitives.
//! - `"$setElementOrder/<field>": [...]` orders the merged list: elements it
//!   names come in its order, the rest keep their relative order from the
//!   live list, interleaved where the live order places them.
//!
//! Without `$setElementOrder`, upstream orders a merged list the same way
//! with the patch's own list as the order: elements named in the patch come
//! in patch order, and a new element lands *before* the original elements
//! it cannot be placed against (the `kubectl patch` documentation shows a
//! patched-in container ahead of the existing one). This module does the
//! same.
//!
//! Directives and `null`s never reach the result; values added from the
//! patch are cleaned of both.
//!
//! [`create_strategic_merge_patch`] computes the two-way patch `kubectl`
//! sends (with `$setElementOrder`, `$deleteFromPrimitiveList`, `$retainKeys`
//! and `$patch: delete` elements where needed).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::patch_meta::{ListStrategy, PatchMeta};

const DIRECTIVE: &str = "$patch";
const REPLACE: &str = "replace";
const DELETE: &str = "delete";
const MERGE: &str = "merge";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Nesting (maps and lists) beyond which a patch is refused rather than
/// recursed into. Anything serde_json parsed is at most 128 deep, so only
/// values built in code can reach it; it keeps the recursion well inside a
/// 2 MiB thread stack even in debug builds.
pub const MAX_DEPTH: usize = 160;

const GO_MAP: &str = "map[string]interface {}";
const GO_SLICE: &str = "[]interface {}";

/// Why a strategic merge patch could not be applied or created.
///
/// The messages are upstream's. Upstream answers 400 for the
/// `BadPatchFormat*` and `BadJsonDoc` errors, 422 for
/// [`StrategicMergeError::NoListOfLists`], and 500 (with the message as is)
/// for the rest; see [`super::PatchError::status_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The original or the patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// An element of a list merged by key lacks the key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    /// `$patch` with a value other than `replace`/`delete` (maps) or
    /// `replace`/`delete`/`merge` (list elements).
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    /// `{"$patch": "merge"}` as a list element.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("list element types are not identical: {lists}")]
    MixedListElementTypes { lists: String },
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A list of objects whose strategy is merge but has no merge key.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyForList { field: String },
    /// A value had the wrong JSON type (named as Go names it).
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("value for key {index} is not a map")]
    NotAMap { index: usize },
    /// The patch list's order contradicts its `$setElementOrder` list.
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    SetElementOrderMismatch { patch: String, order: String },
    #[error("the patch is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl StrategicMergeError {
    /// The HTTP status upstream answers with for this error.
    pub fn status_code(&self) -> u16 {
        use StrategicMergeError::*;
        match self {
            BadJsonDoc
            | BadPatchFormatForPrimitiveList
            | BadPatchFormatForRetainKeys
            | BadPatchFormatForSetElementOrderList
            | TooDeep => 400,
            NoListOfLists => 422,
            _ => 500,
        }
    }
}

type Result<T> = std::result::Result<T, StrategicMergeError>;

/// Applies strategic merge `patch` to a copy of `original`. Both must be
/// JSON objects.
pub fn apply_strategic_merge_patch(
    original: &Value,
    patch: &Value,
    meta: &dyn PatchMeta,
) -> Result<Value> {
    let (Value::Object(original), Value::Object(patch)) = (original, patch) else {
        return Err(StrategicMergeError::BadJsonDoc);
    };
    let mut ctx = Ctx::new(meta);
    merge_map(original.clone(), patch.clone(), &mut ctx, 0).map(Value::Object)
}

/// The two-way strategic merge patch that turns `original` into
/// `modified`, as `kubectl` builds it. Both must be JSON objects.
///
/// Applying the result to `original` yields `modified` as long as merged
/// lists have unique keys (and unique values, for primitives) and neither
/// document holds `null` values.
pub fn create_strategic_merge_patch(
    original: &Value,
    modified: &Value,
    meta: &dyn PatchMeta,
) -> Result<Value> {
    let (Value::Object(original), Value::Object(modified)) = (original, modified) else {
        return Err(StrategicMergeError::BadJsonDoc);
    };
    let mut ctx = Ctx::new(meta);
    diff_maps(original, modified, false, &mut ctx, 0).map(Value::Object)
}

/// The field path being merged, for [`PatchMeta`] lookups.
struct Ctx<'m> {
    meta: &'m dyn PatchMeta,
    path: Vec<String>,
}

impl<'m> Ctx<'m> {
    fn new(meta: &'m dyn PatchMeta) -> Self {
        Ctx {
            meta,
            path: Vec::new(),
        }
    }

    fn path(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }

    fn list_strategy(&self) -> ListStrategy {
        self.meta.list_strategy(&self.path())
    }

    fn retain_keys(&self) -> bool {
        self.meta.retain_keys(&self.path())
    }

    /// Runs `f` with `field` appended to the path.
    fn within<R>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(field.to_string());
        let out = f(self);
        self.path.pop();
        out
    }
}

fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        Err(StrategicMergeError::TooDeep)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Map<String, Value>> {
    check_depth(depth)?;
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some(REPLACE) => {
                patch.remove(DIRECTIVE);
                clean_map(patch, depth)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(StrategicMergeError::BadPatchType {
                directive: go_fmt(directive),
                map: go_fmt_map(&patch),
            }),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, ctx, depth)?;

    for (key, patch_value) in patch {
        let (field, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(field) => (field.to_string(), true),
                None => return Err(StrategicMergeError::BadPatchFormatForPrimitiveList),
            },
            None => (key, false),
        };

        if patch_value.is_null() {
            original.remove(&field);
            continue;
        }
        let same_kind = original
            .get(&field)
            .is_some_and(|current| GoKind::of(current) == GoKind::of(&patch_value));
        if !same_kind {
            // Absent, or a different type: the patch value replaces (a
            // deletion list only ever removes).
            if !is_delete_list {
                match clean_value(patch_value, depth + 1)? {
                    Some(value) => {
                        original.insert(field, value);
                    }
                    None => {
                        original.remove(&field);
                    }
                }
            }
            continue;
        }
        let Some(slot) = original.get_mut(&field) else {
            continue;
        };
        let current = std::mem::take(slot);
        *slot = match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_value)) => ctx
                .within(&field, |ctx| {
                    merge_map(current, patch_value, ctx, depth + 1)
                })
                .map(Value::Object)?,
            (Value::Array(current), Value::Array(patch_value)) => ctx
                .within(&field, |ctx| {
                    let strategy = ctx.list_strategy();
                    merge_list(
                        current,
                        patch_value,
                        &strategy,
                        is_delete_list,
                        ctx,
                        depth + 1,
                    )
                })
                .map(Value::Array)?,
            (_, scalar) => scalar,
        };
    }
    Ok(original)
}

/// `$retainKeys`: every non-null key the patch sets must be listed, and the
/// original keeps only listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
    };
    let keep: HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !keep.contains(key.as_str()) {
            return Err(StrategicMergeError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// Handles every `$setElementOrder/<field>` of `patch`, merging the field's
/// list along with it and removing both from `patch`.
fn apply_element_orders(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<()> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|key| key.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let Some(order) = patch.remove(&directive) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_SLICE,
                actual: go_type(&order),
            });
        };
        let field = directive
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or(StrategicMergeError::BadPatchFormatForSetElementOrderList)?
            .to_string();
        let original_list = match original.get_mut(&field) {
            None => None,
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            Some(other) => {
                return Err(StrategicMergeError::BadArgType {
                    expected: GO_SLICE,
                    actual: go_type(other),
                })
            }
        };
        let patch_list = match patch.remove(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                return Err(StrategicMergeError::BadArgType {
                    expected: GO_SLICE,
                    actual: go_type(&other),
                })
            }
        };
        let ordered = ctx.within(&field, |ctx| {
            order_list(original_list, patch_list, &order, ctx, depth + 1)
        })?;
        if let Some(list) = ordered {
            original.insert(field, Value::Array(list));
        }
    }
    Ok(())
}

/// Merges a list that has a `$setElementOrder` directive and orders it.
fn order_list(
    original_list: Option<Vec<Value>>,
    patch_list: Option<Vec<Value>>,
    order: &[Value],
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Option<Vec<Value>>> {
    check_depth(depth)?;
    let strategy = ctx.list_strategy();
    let key = strategy.merge_key().unwrap_or("");
    validate_patch_against_order(patch_list.as_deref().unwrap_or(&[]), order, key)?;
    if original_list.is_none() && patch_list.is_none() {
        return Ok(None);
    }
    let live = original_list.as_deref().unwrap_or(&[]);
    let kind = slice_element_kind(&[live, patch_list.as_deref().unwrap_or(&[])])?;
    if kind == GoKind::Object {
        validate_merge_keys(order, key)?;
        validate_merge_keys(live, key)?;
    }
    let order_index = OrderIndex::new(order, key, kind);
    let live_index = OrderIndex::new(live, key, kind);

    let merged = match (original_list, patch_list) {
        (Some(original), Some(patch)) => merge_list(original, patch, &strategy, false, ctx, depth)?,
        (Some(original), None) => original,
        (None, Some(patch)) => clean_list(patch, depth)?,
        (None, None) => return Ok(None),
    };
    if kind == GoKind::Object {
        validate_merge_keys(&merged, key)?;
    }
    let (named, live_only) = partition(merged, &order_index, order, key, kind)?;
    Ok(Some(normalize_element_order(
        named,
        live_only,
        &order_index,
        &live_index,
        key,
        kind,
    )))
}

/// Merges two lists according to `strategy` (upstream's mergeSliceHandler
/// and mergeSlice).
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    strategy: &ListStrategy,
    is_delete_list: bool,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Vec<Value>> {
    check_depth(depth)?;
    if !strategy.is_merge() && !is_delete_list {
        return clean_list(patch, depth);
    }
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_kind(&[&original, &patch])?;
    let key = strategy.merge_key().unwrap_or("");

    if kind != GoKind::Object {
        if is_delete_list {
            return Ok(delete_from_list(original, &patch));
        }
        let patch_index = OrderIndex::new(&patch, key, kind);
        let live_index = OrderIndex::new(&original, key, kind);
        let mut seen = HashSet::new();
        let merged: Vec<Value> = original
            .into_iter()
            .chain(patch.iter().cloned())
            .filter(|v| seen.insert(canonical(v)))
            .collect();
        let (named, live_only) = partition(merged, &patch_index, &patch, key, kind)?;
        return Ok(normalize_element_order(
            named,
            live_only,
            &patch_index,
            &live_index,
            key,
            kind,
        ));
    }

    if key.is_empty() {
        return Err(StrategicMergeError::NoMergeKeyForList {
            field: ctx.path.join("."),
        });
    }
    let (original, patch) = split_special_elements(original, patch, key, depth)?;
    let patch_index = OrderIndex::new(&patch, key, kind);
    let live_index = OrderIndex::new(&original, key, kind);
    let merged = merge_by_key(original, patch, key, ctx, depth)?;
    let (named, live_only) = partition_by_index(merged, &patch_index, key)?;
    Ok(normalize_element_order(
        named,
        live_only,
        &patch_index,
        &live_index,
        key,
        kind,
    ))
}

/// Applies the `$patch` elements of a list patch: deletions by key and a
/// whole-list `replace`. Returns the original (or replacement) list and the
/// patch without its special elements.
fn split_special_elements(
    original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    depth: usize,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut deleted = HashSet::new();
    let mut replace = false;
    for element in patch {
        let Value::Object(map) = &element else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_MAP,
                actual: go_type(&element),
            });
        };
        let Some(directive) = map.get(DIRECTIVE) else {
            rest.push(element);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => match map.get(key) {
                Some(value) => {
                    deleted.insert(canonical(value));
                }
                None => {
                    return Err(StrategicMergeError::NoMergeKey {
                        map: go_fmt(&element),
                        key: key.to_string(),
                    })
                }
            },
            Some(REPLACE) => replace = true,
            Some(MERGE) => return Err(StrategicMergeError::MergeDirectiveInList),
            _ => {
                return Err(StrategicMergeError::BadPatchType {
                    directive: go_fmt(directive),
                    map: go_fmt(&element),
                })
            }
        }
    }
    if replace {
        return Ok((clean_list(rest, depth)?, Vec::new()));
    }
    let original = if deleted.is_empty() {
        original
    } else {
        original
            .into_iter()
            .filter(|element| {
                element
                    .get(key)
                    .is_none_or(|value| !deleted.contains(&canonical(value)))
            })
            .collect()
    };
    Ok((original, rest))
}

/// Merges each patch element into the original element with the same key,
/// appending the ones with no match.
fn merge_by_key(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Vec<Value>> {
    let mut positions: HashMap<String, usize> = HashMap::new();
    for (i, element) in original.iter().enumerate() {
        if let Some(value) = element.get(key) {
            positions.entry(canonical(value)).or_insert(i);
        }
    }
    for element in patch {
        let Value::Object(element) = element else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_MAP,
                actual: go_type(&element),
            });
        };
        let Some(key_value) = element.get(key) else {
            return Err(StrategicMergeError::NoMergeKey {
                map: go_fmt_map(&element),
                key: key.to_string(),
            });
        };
        let id = canonical(key_value);
        match positions.get(&id).copied() {
            Some(i) => {
                let Some(slot) = original.get_mut(i) else {
                    continue;
                };
                let Value::Object(current) = std::mem::take(slot) else {
                    return Err(StrategicMergeError::NotAMap { index: i });
                };
                *slot = Value::Object(merge_map(current, element, ctx, depth + 1)?);
            }
            None => {
                let null_key = key_value.is_null();
                let mut added = clean_map(element, depth)?;
                if null_key {
                    added.insert(key.to_string(), Value::Null);
                }
                positions.insert(id, original.len());
                original.push(Value::Object(added));
            }
        }
    }
    Ok(original)
}

/// `$deleteFromPrimitiveList`: drops every value listed.
fn delete_from_list(current: Vec<Value>, to_delete: &[Value]) -> Vec<Value> {
    let doomed: HashSet<String> = to_delete.iter().map(canonical).collect();
    current
        .into_iter()
        .filter(|v| !doomed.contains(&canonical(v)))
        .collect()
}

/// Checks that the patch list names its elements in the order the
/// `$setElementOrder` list gives (deletions and directives aside).
fn validate_patch_against_order(patch: &[Value], order: &[Value], key: &str) -> Result<()> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let mut kept = Vec::with_capacity(patch.len());
    for element in patch {
        if !key.is_empty() {
            let Value::Object(map) = element else {
                return Err(StrategicMergeError::BadArgType {
                    expected: GO_MAP,
                    actual: go_type(element),
                });
            };
            if map.get(DIRECTIVE).and_then(Value::as_str) == Some(DELETE) {
                continue;
            }
        }
        kept.push(element);
    }
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if merge_key_value_equal(kept[p], &order[o], key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() && o >= order.len() {
        return Err(StrategicMergeError::SetElementOrderMismatch {
            patch: go_fmt_list(patch),
            order: go_fmt_list(order),
        });
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, key: &str) -> Result<bool> {
    if key.is_empty() {
        return Ok(left == right);
    }
    let value = |v: &Value| -> Result<Value> {
        let Value::Object(map) = v else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_MAP,
                actual: go_type(v),
            });
        };
        map.get(key)
            .cloned()
            .ok_or_else(|| StrategicMergeError::NoMergeKey {
                map: go_fmt(v),
                key: key.to_string(),
            })
    };
    Ok(value(left)? == value(right)?)
}

/// Every element must be an object holding `key`.
fn validate_merge_keys(list: &[Value], key: &str) -> Result<()> {
    for element in list {
        let Value::Object(map) = element else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_MAP,
                actual: go_type(element),
            });
        };
        if !map.contains_key(key) {
            return Err(StrategicMergeError::NoMergeKey {
                map: go_fmt(element),
                key: key.to_string(),
            });
        }
    }
    Ok(())
}

/// Splits `merged` into the elements named by the `by` list (per
/// `by_index`) and the rest, keeping their relative order.
fn partition(
    merged: Vec<Value>,
    by_index: &OrderIndex,
    by: &[Value],
    key: &str,
    kind: GoKind,
) -> Result<(Vec<Value>, Vec<Value>)> {
    if key.is_empty() {
        let (named, rest) = merged
            .into_iter()
            .partition(|v| by_index.position(v, key, kind).is_some());
        return Ok((named, rest));
    }
    if let Some(first) = merged.first() {
        validate_merge_keys(std::slice::from_ref(first), key)?;
        if let Some(index) = by.iter().position(|v| !v.is_object()) {
            return Err(StrategicMergeError::NotAMap { index });
        }
    }
    partition_by_index(merged, by_index, key)
}

/// [`partition`] for lists of objects merged by `key`.
fn partition_by_index(
    merged: Vec<Value>,
    by_index: &OrderIndex,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut named = Vec::new();
    let mut rest = Vec::new();
    for element in merged {
        let Value::Object(map) = &element else {
            return Err(StrategicMergeError::BadArgType {
                expected: GO_MAP,
                actual: go_type(&element),
            });
        };
        let Some(value) = map.get(key) else {
            return Err(StrategicMergeError::NoMergeKey {
                map: go_fmt(&element),
                key: key.to_string(),
            });
        };
        if by_index.contains(value) {
            named.push(element);
        } else {
            rest.push(element);
        }
    }
    Ok((named, rest))
}

/// Positions of a list's elements (by merge key value for objects, by
/// value otherwise), first occurrence winning.
struct OrderIndex {
    positions: HashMap<String, usize>,
}

impl OrderIndex {
    fn new(list: &[Value], key: &str, kind: GoKind) -> Self {
        let mut positions = HashMap::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            positions.entry(item_id(item, key, kind)).or_insert(i);
        }
        OrderIndex { positions }
    }

    fn position(&self, item: &Value, key: &str, kind: GoKind) -> Option<usize> {
        self.positions.get(&item_id(item, key, kind)).copied()
    }

    /// Whether some element has merge key value `value`.
    fn contains(&self, value: &Value) -> bool {
        self.positions.contains_key(&canonical(value))
    }
}

/// What identifies a list element for ordering: its merge key value for
/// objects (missing counts as null, as in Go), itself otherwise.
fn item_id(item: &Value, key: &str, kind: GoKind) -> String {
    if kind == GoKind::Object {
        canonical(item.get(key).unwrap_or(&Value::Null))
    } else {
        canonical(item)
    }
}

/// Sorts the patch-named elements by the patch (or `$setElementOrder`)
/// order and the live-only elements by the live order, then interleaves
/// them: a live-only element goes first only when both it and the next
/// named element are in the live list and it comes earlier there.
fn normalize_element_order(
    named: Vec<Value>,
    live_only: Vec<Value>,
    named_order: &OrderIndex,
    live_order: &OrderIndex,
    key: &str,
    kind: GoKind,
) -> Vec<Value> {
    let named = sort_by_order(named, named_order, key, kind);
    let live_only = sort_by_order(live_only, live_order, key, kind);
    let mut out = Vec::with_capacity(named.len() + live_only.len());
    let mut left = live_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (live_order.position(l, key, kind), live_order.position(r, key, kind)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn sort_by_order(list: Vec<Value>, order: &OrderIndex, key: &str, kind: GoKind) -> Vec<Value> {
    let mut keyed: Vec<(usize, Value)> = list
        .into_iter()
        .map(|v| (order.position(&v, key, kind).unwrap_or(usize::MAX), v))
        .collect();
    keyed.sort_by_key(|(position, _)| *position);
    keyed.into_iter().map(|(_, v)| v).collect()
}

/// The one element type shared by every element of `lists`.
fn slice_element_kind(lists: &[&[Value]]) -> Result<GoKind> {
    let mut kind = None;
    for list in lists {
        for element in list.iter() {
            let this = GoKind::of(element);
            match kind {
                None if this == GoKind::Array => {
                    return Err(StrategicMergeError::NoListOfLists);
                }
                None => kind = Some(this),
                Some(k) if k != this => {
                    let lists = lists.iter().map(|l| go_fmt_list(l)).collect::<Vec<_>>();
                    return Err(StrategicMergeError::MixedListElementTypes {
                        lists: format!("[{}]", lists.join(" ")),
                    });
                }
                Some(_) => {}
            }
        }
    }
    kind.ok_or(StrategicMergeError::NoElements)
}

// ---------------------------------------------------------------------------
// Cleaning values taken from the patch
// ---------------------------------------------------------------------------

/// A patch value as it lands in the result: `null` members dropped, maps
/// carrying `$patch` dropped (`None`), other directive keys dropped.
fn clean_value(value: Value, depth: usize) -> Result<Option<Value>> {
    check_depth(depth)?;
    Ok(match value {
        Value::Object(map) => {
            if map.get(DIRECTIVE).is_some_and(|d| !d.is_null()) {
                None
            } else {
                Some(Value::Object(clean_map(map, depth)?))
            }
        }
        Value::Array(items) => Some(Value::Array(clean_list(items, depth)?)),
        scalar => Some(scalar),
    })
}

fn clean_map(map: Map<String, Value>, depth: usize) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (key, value) in map {
        if value.is_null() || is_directive_key(&key) {
            continue;
        }
        if let Some(value) = clean_value(value, depth + 1)? {
            out.insert(key, value);
        }
    }
    Ok(out)
}

fn clean_list(items: Vec<Value>, depth: usize) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.extend(clean_value(item, depth + 1)?);
    }
    Ok(out)
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

// ---------------------------------------------------------------------------
// Creating
// ---------------------------------------------------------------------------

fn diff_maps(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
    build_retain_keys: bool,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<Map<String, Value>> {
    check_depth(depth)?;
    let mut patch = Map::new();
    let mut retain = Vec::new();
    for (key, new) in modified {
        if build_retain_keys && !new.is_null() {
            retain.push(key.clone());
        }
        let Some(old) = original.get(key) else {
            patch.insert(key.clone(), new.clone());
            continue;
        };
        if key == DIRECTIVE || GoKind::of(old) != GoKind::of(new) {
            if old != new {
                patch.insert(key.clone(), new.clone());
            }
            continue;
        }
        match (old, new) {
            (Value::Object(old), Value::Object(new)) => {
                let diff = ctx.within(key, |ctx| {
                    let retain = ctx.retain_keys();
                    diff_maps(old, new, retain, ctx, depth + 1)
                })?;
                if !diff.is_empty() {
                    patch.insert(key.clone(), Value::Object(diff));
                }
            }
            (Value::Array(old), Value::Array(new)) => {
                let strategy = ctx.within(key, |ctx| ctx.list_strategy());
                if !strategy.is_merge() {
                    if old != new {
                        patch.insert(key.clone(), Value::Array(new.clone()));
                    }
                    continue;
                }
                let (additions, deletions, order) = ctx.within(key, |ctx| {
                    let retain = ctx.retain_keys();
                    diff_lists(old, new, &strategy, retain, ctx, depth + 1)
                })?;
                if !additions.is_empty() {
                    patch.insert(key.clone(), Value::Array(additions));
                }
                if !deletions.is_empty() {
                    patch.insert(
                        format!("{DELETE_FROM_PRIMITIVE_LIST}/{key}"),
                        Value::Array(deletions),
                    );
                }
                if !order.is_empty() {
                    patch.insert(format!("{SET_ELEMENT_ORDER}/{key}"), Value::Array(order));
                }
            }
            _ => {
                if old != new {
                    patch.insert(key.clone(), new.clone());
                }
            }
        }
    }
    for key in original.keys() {
        if !modified.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    let drops_keys = original
        .iter()
        .any(|(key, value)| !value.is_null() && !modified.contains_key(key));
    if !retain.is_empty() && (!patch.is_empty() || drops_keys) {
        retain.sort();
        patch.insert(
            RETAIN_KEYS.to_string(),
            Value::Array(retain.into_iter().map(Value::String).collect()),
        );
    }
    Ok(patch)
}

/// The patch list, the `$deleteFromPrimitiveList` list and the
/// `$setElementOrder` list for a merged list field.
fn diff_lists(
    original: &[Value],
    modified: &[Value],
    strategy: &ListStrategy,
    retain: bool,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<(Vec<Value>, Vec<Value>, Vec<Value>)> {
    if original.is_empty() {
        return Ok((modified.to_vec(), Vec::new(), Vec::new()));
    }
    let kind = slice_element_kind(&[original, modified])?;
    let key = strategy.merge_key().unwrap_or("");
    if kind == GoKind::Object {
        let (mut patch, deletions) =
            diff_lists_of_maps(original, modified, key, retain, ctx, depth)?;
        let order_same = original.len() == modified.len()
            && original
                .iter()
                .zip(modified)
                .all(|(o, m)| o.get(key) == m.get(key));
        patch.extend(deletions);
        let order = if !patch.is_empty() || !order_same {
            modified
                .iter()
                .map(|m| {
                    let mut entry = Map::new();
                    entry.insert(key.to_string(), m.get(key).cloned().unwrap_or(Value::Null));
                    Value::Object(entry)
                })
                .collect()
        } else {
            Vec::new()
        };
        return Ok((patch, Vec::new(), order));
    }
    let (additions, deletions) = diff_lists_of_scalars(original, modified);
    let modified_index = OrderIndex::new(modified, key, kind);
    let additions = sort_by_order(additions, &modified_index, key, kind);
    let order = if !deletions.is_empty() || original != modified {
        modified.to_vec()
    } else {
        Vec::new()
    };
    Ok((additions, deletions, order))
}

/// Changed and added elements (in `modified` order) and `$patch: delete`
/// elements for removed keys (in key order).
fn diff_lists_of_maps(
    original: &[Value],
    modified: &[Value],
    key: &str,
    retain: bool,
    ctx: &mut Ctx,
    depth: usize,
) -> Result<(Vec<Value>, Vec<Value>)> {
    if key.is_empty() {
        return Err(StrategicMergeError::NoMergeKeyForList {
            field: ctx.path.join("."),
        });
    }
    let keyed = |list: &[Value]| -> Result<Vec<(String, Map<String, Value>)>> {
        list.iter()
            .map(|element| {
                let Value::Object(map) = element else {
                    return Err(StrategicMergeError::BadArgType {
                        expected: GO_MAP,
                        actual: go_type(element),
                    });
                };
                let value = map
                    .get(key)
                    .ok_or_else(|| StrategicMergeError::NoMergeKey {
                        map: go_fmt(element),
                        key: key.to_string(),
                    })?;
                Ok((go_fmt(value), map.clone()))
            })
            .collect()
    };
    let original = keyed(original)?;
    let modified = keyed(modified)?;
    let mut by_key: HashMap<&str, &Map<String, Value>> = HashMap::new();
    for (id, map) in &original {
        by_key.entry(id.as_str()).or_insert(map);
    }
    let mut patch = Vec::new();
    for (id, new) in &modified {
        match by_key.get(id.as_str()) {
            Some(old) => {
                let mut diff = diff_maps(old, new, retain, ctx, depth + 1)?;
                if !diff.is_empty() {
                    diff.insert(
                        key.to_string(),
                        new.get(key).cloned().unwrap_or(Value::Null),
                    );
                    patch.push(Value::Object(diff));
                }
            }
            None => patch.push(Value::Object(new.clone())),
        }
    }
    let kept: HashSet<&str> = modified.iter().map(|(id, _)| id.as_str()).collect();
    let mut removed: Vec<&(String, Map<String, Value>)> = original
        .iter()
        .filter(|(id, _)| !kept.contains(id.as_str()))
        .collect();
    removed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen = HashSet::new();
    let deletions = removed
        .into_iter()
        .filter(|(id, _)| seen.insert(id.as_str()))
        .map(|(_, map)| {
            let mut directive = Map::new();
            directive.insert(DIRECTIVE.to_string(), Value::String(DELETE.to_string()));
            directive.insert(
                key.to_string(),
                map.get(key).cloned().unwrap_or(Value::Null),
            );
            Value::Object(directive)
        })
        .collect();
    Ok((patch, deletions))
}

/// Values added to and removed from a list of primitives, compared by
/// their printed form as upstream does.
fn diff_lists_of_scalars(original: &[Value], modified: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let sorted = |list: &[Value]| {
        let mut keyed: Vec<(String, Value)> = list.iter().map(|v| (go_fmt(v), v.clone())).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed
    };
    let original = sorted(original);
    let modified = sorted(modified);
    let (mut o, mut m) = (0, 0);
    let mut additions = Vec::new();
    let mut deletions: Vec<Value> = Vec::new();
    loop {
        match (original.get(o), modified.get(m)) {
            (None, None) => break,
            (Some(old), Some(new)) if old.0 == new.0 => {
                o += 1;
                m += 1;
            }
            (Some(old), Some(new)) if old.0 < new.0 => {
                deletions.push(old.1.clone());
                o += 1;
            }
            (Some(old), None) => {
                deletions.push(old.1.clone());
                o += 1;
            }
            (_, Some(new)) => {
                additions.push(new.1.clone());
                m += 1;
            }
        }
    }
    let mut seen = HashSet::new();
    deletions.retain(|v| seen.insert(canonical(v)));
    (additions, deletions)
}

// ---------------------------------------------------------------------------
// Value helpers
// ---------------------------------------------------------------------------

/// A JSON value's type as upstream's decoder sees it (integers and floats
/// are distinct Go types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoKind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
}

impl GoKind {
    fn of(value: &Value) -> Self {
        match value {
            Value::Null => GoKind::Null,
            Value::Bool(_) => GoKind::Bool,
            Value::Number(n) if n.is_i64() => GoKind::Int,
            Value::Number(_) => GoKind::Float,
            Value::String(_) => GoKind::String,
            Value::Array(_) => GoKind::Array,
            Value::Object(_) => GoKind::Object,
        }
    }
}

/// An identity for hashing: equal strings exactly when the values are
/// equal as `serde_json::Value`s.
fn canonical(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 1);
            out.push('s');
            out.push_str(s);
            out
        }
        other => serde_json::to_string(&sorted_for_identity(other)).unwrap_or_default(),
    }
}

/// Objects with sorted keys, so identity does not depend on member order
/// when serde_json preserves insertion order.
fn sorted_for_identity(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_for_identity(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_for_identity).collect()),
        other => other.clone(),
    }
}

/// The Go type name of a decoded JSON value, as upstream's messages say.
fn go_type(value: &Value) -> &'static str {
    match GoKind::of(value) {
        GoKind::Null => "<nil>",
        GoKind::Bool => "bool",
        GoKind::Int => "int64",
        GoKind::Float => "float64",
        GoKind::String => "string",
        GoKind::Array => GO_SLICE,
        GoKind::Object => GO_MAP,
    }
}

/// Deepest level [`go_fmt`] prints before eliding.
const FMT_DEPTH: usize = 32;

/// A value printed the way Go's `%v` prints a decoded JSON value:
/// `map[k:v k2:v2]` with sorted keys, `[a b]`, bare strings, `<nil>`.
fn go_fmt(value: &Value) -> String {
    let mut out = String::new();
    write_go(&mut out, value, 0);
    out
}

fn go_fmt_map(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_go_map(&mut out, map, 0);
    out
}

fn go_fmt_list(list: &[Value]) -> String {
    let mut out = String::new();
    write_go_list(&mut out, list, 0);
    out
}

fn write_go(out: &mut String, value: &Value, depth: usize) {
    if depth > FMT_DEPTH {
        out.push_str("...");
        return;
    }
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(f)) => out.push_str(&go_float(f)),
            (None, None) => {
                let _ = write!(out, "{n}");
            }
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => write_go_list(out, items, depth),
        Value::Object(map) => write_go_map(out, map, depth),
    }
}

fn write_go_map(out: &mut String, map: &Map<String, Value>, depth: usize) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push_str("map[");
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push(':');
        write_go(out, value, depth + 1);
    }
    out.push(']');
}

fn write_go_list(out: &mut String, list: &[Value], depth: usize) {
    out.push('[');
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_go(out, item, depth + 1);
    }
    out.push(']');
}

/// Go's `%v` for a float64 (`%g` with the shortest digits): exponent form
/// when the decimal exponent is below -4 or at least 6 (`1e+06`).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return sci;
    };
    if (-4..6).contains(&exponent) {
        format!("{f}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
