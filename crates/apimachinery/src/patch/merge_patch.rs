//! RFC 7386 JSON Merge Patch (`application/merge-patch+json`).
//!
//! An object patch merges into the target member by member: `null` deletes
//! a member, objects merge recursively, anything else (arrays included)
//! replaces. A patch that is not an object replaces the whole target.
//!
//! [`create_merge_patch`] is the inverse: the patch that turns one document
//! into another, as `kubectl` computes it for resources without strategic
//! merge metadata. Merge patches cannot express a member whose value is
//! `null`, so documents containing `null` values do not round-trip.

use serde_json::{Map, Value};

/// Applies `patch` to a copy of `target` and returns the result.
pub fn apply_merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    merge_patch_in_place(&mut out, patch);
    out
}

/// Applies `patch` to `target` in place.
pub fn merge_patch_in_place(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(members) = target {
        for (name, value) in patch {
            if value.is_null() {
                members.remove(name);
            } else {
                let slot = members.entry(name.clone()).or_insert(Value::Null);
                merge_patch_in_place(slot, value);
            }
        }
    }
}

/// The merge patch that turns `original` into `modified`: members removed
/// become `null`, changed objects are diffed recursively, every other
/// changed value is sent whole. Identical documents give `{}`.
pub fn create_merge_patch(original: &Value, modified: &Value) -> Value {
    match (original, modified) {
        (Value::Object(original), Value::Object(modified)) => {
            Value::Object(diff_objects(original, modified))
        }
        _ => modified.clone(),
    }
}

fn diff_objects(
    original: &Map<String, Value>,
    modified: &Map<String, Value>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for name in original.keys() {
        if !modified.contains_key(name) {
            patch.insert(name.clone(), Value::Null);
        }
    }
    for (name, new) in modified {
        match original.get(name) {
            None => {
                patch.insert(name.clone(), new.clone());
            }
            Some(old) if old == new => {}
            Some(Value::Object(old)) if new.is_object() => {
                if let Value::Object(new) = new {
                    let diff = diff_objects(old, new);
                    if !diff.is_empty() {
                        patch.insert(name.clone(), Value::Object(diff));
                    }
                }
            }
            Some(_) => {
                patch.insert(name.clone(), new.clone());
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::test_support::Rng;
    use serde_json::json;

    /// RFC 7386 Appendix A, row by row: (original, patch, result).
    #[test]
    fn merge_patch_matches_rfc_7386_examples_table() {
        let table = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (original, patch, result) in table {
            assert_eq!(
                apply_merge_patch(&original, &patch),
                result,
                "{original} + {patch}"
            );
        }
    }

    #[test]
    fn merge_patch_applies_rfc_7386_section_3_example() {
        let original = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged"
        });
        let patch = json!({
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null},
            "tags": ["example"]
        });
        assert_eq!(
            apply_merge_patch(&original, &patch),
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890"
            })
        );
    }

    #[test]
    fn merge_patch_null_deletes_key() {
        let out = apply_merge_patch(&json!({"a": 1, "b": 2}), &json!({"b": null}));
        assert_eq!(out, json!({"a": 1}));
    }

    #[test]
    fn merge_patch_null_for_missing_key_is_ignored() {
        let out = apply_merge_patch(&json!({"a": 1}), &json!({"z": null}));
        assert_eq!(out, json!({"a": 1}));
    }

    #[test]
    fn merge_patch_merges_objects_recursively() {
        let out = apply_merge_patch(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "x"}}),
            &json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}, "name": "x"}})
        );
    }

    #[test]
    fn merge_patch_replaces_arrays_whole() {
        let out = apply_merge_patch(
            &json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            &json!({"spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(out, json!({"spec": {"containers": [{"name": "c"}]}}));
    }

    #[test]
    fn merge_patch_in_place_changes_target() {
        let mut target = json!({"a": {"b": 1}});
        merge_patch_in_place(&mut target, &json!({"a": {"c": 2}}));
        assert_eq!(target, json!({"a": {"b": 1, "c": 2}}));
    }

    #[test]
    fn create_merge_patch_of_identical_documents_is_empty() {
        let doc = json!({"a": {"b": [1, 2]}, "c": "d"});
        assert_eq!(create_merge_patch(&doc, &doc), json!({}));
    }

    #[test]
    fn create_merge_patch_sends_nulls_for_removed_members_and_diffs_objects() {
        let patch = create_merge_patch(
            &json!({"a": 1, "b": {"c": 1, "d": 2}, "e": [1]}),
            &json!({"b": {"c": 1, "d": 3}, "e": [1, 2], "f": true}),
        );
        assert_eq!(
            patch,
            json!({"a": null, "b": {"d": 3}, "e": [1, 2], "f": true})
        );
    }

    #[test]
    fn create_merge_patch_of_non_objects_is_the_modified_document() {
        assert_eq!(
            create_merge_patch(&json!([1]), &json!({"a": 1})),
            json!({"a": 1})
        );
        assert_eq!(
            create_merge_patch(&json!({"a": 1}), &json!("x")),
            json!("x")
        );
    }

    #[test]
    fn merge_patch_of_created_diff_round_trips_to_modified() {
        let mut rng = Rng::new(7386);
        for case in 0..2000 {
            let original = Value::Object(rng.object(4));
            let modified = rng.mutate(&original, 3);
            let patch = create_merge_patch(&original, &modified);
            assert_eq!(
                apply_merge_patch(&original, &patch),
                modified,
                "case {case}: {original} -> {modified} via {patch}"
            );
        }
    }

    #[test]
    fn merge_patch_handles_deeply_nested_patches() {
        let mut patch = json!({"leaf": null});
        for _ in 0..500 {
            patch = json!({"a": patch});
        }
        let out = apply_merge_patch(&json!({}), &patch);
        let mut node = &out;
        let mut depth = 0;
        while let Some(next) = node.get("a") {
            node = next;
            depth += 1;
        }
        assert_eq!(depth, 500);
        assert_eq!(node, &json!({}));
    }
}
