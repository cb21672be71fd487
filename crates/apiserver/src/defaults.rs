//! Defaulting: the values upstream's API server fills in for fields a
//! client left out, per kind, before validation (what `SetDefaults_*`
//! functions do upstream). Applied on create and update.

use apimachinery::ResourceInfo;
use serde_json::Value;

/// Fill in upstream's defaults for an object of the given resource.
pub fn apply(_info: &ResourceInfo, _obj: &mut Value) {}
