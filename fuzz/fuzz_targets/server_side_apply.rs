//! Server-side apply (input: live object NUL applied configuration) with
//! the configuration's built-in kind's metadata (a Pod's for anything
//! else): creating, applying, force-applying and recording an update never
//! panic, whatever the live object's managedFields hold.
#![no_main]

use apimachinery::patch::{apply::apply, record_update};
use libfuzzer_sys::fuzz_target;
use rustkube_fuzz::{meta_for, object_and_patch};

const NOW: &str = "2026-01-01T00:00:00Z";

fuzz_target!(|data: &[u8]| {
    let Some((live, config)) = object_and_patch(data) else {
        return;
    };
    let meta = meta_for(&config);
    let _ = apply(None, &config, "fuzz", false, &meta, NOW);
    let _ = apply(Some(&live), &config, "other", false, &meta, NOW);
    if let Ok(mut applied) = apply(Some(&live), &config, "fuzz", true, &meta, NOW) {
        let again = apply(Some(&applied), &config, "fuzz", false, &meta, NOW);
        assert_eq!(
            again.as_ref(),
            Ok(&applied),
            "re-applying the same configuration changed the object"
        );
        record_update(Some(&live), &mut applied, "editor", NOW, &meta);
    }
    let mut updated = config.clone();
    record_update(Some(&live), &mut updated, "editor", NOW, &meta);
});
