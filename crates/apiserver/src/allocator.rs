//! Cluster-wide allocators for Service ClusterIPs and NodePorts.
//!
//! Each range is one datastore object holding a bitmap (as upstream keeps
//! `/registry/ranges/serviceips` and `/registry/ranges/servicenodeports`),
//! changed only by compare-and-swap on its mod revision. Several API
//! servers sharing an etcd therefore never hand out the same IP or port.

use std::net::IpAddr;

use apimachinery::ApiError;
use base64::Engine;
use serde_json::{json, Value};
use storage::{StorageError, Store};

use crate::rest::storage_error;

/// A contiguous range of allocatable items, numbered from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// Datastore key of the bitmap object.
    pub key: String,
    /// How the range is written in the object (e.g. "10.43.0.0/16").
    pub spec: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocError {
    /// The requested item is taken.
    Taken,
    /// The requested item is outside the range.
    OutOfRange,
    /// Nothing is free.
    Full,
    Store(String),
}

fn decode_bitmap(obj: &Value, size: u64) -> Vec<u8> {
    let mut bits = obj
        .get("data")
        .and_then(Value::as_str)
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
        .unwrap_or_default();
    bits.resize(size.div_ceil(8) as usize, 0);
    bits
}

fn get_bit(bits: &[u8], i: u64) -> bool {
    bits.get((i / 8) as usize)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn set_bit(bits: &mut [u8], i: u64, on: bool) {
    if let Some(b) = bits.get_mut((i / 8) as usize) {
        if on {
            *b |= 1 << (i % 8);
        } else {
            *b &= !(1 << (i % 8));
        }
    }
}

impl Range {
    /// Apply `change` to the bitmap with compare-and-swap, retrying on
    /// concurrent writers.
    async fn update<T>(
        &self,
        store: &dyn Store,
        mut change: impl FnMut(&mut Vec<u8>) -> Result<T, AllocError>,
    ) -> Result<T, AllocError> {
        for _ in 0..64 {
            let (current, _) = store
                .get(&self.key)
                .await
                .map_err(|e| AllocError::Store(e.to_string()))?;
            let (obj, rev) = match &current {
                Some(kv) => (
                    serde_json::from_slice(&kv.value).unwrap_or(Value::Null),
                    Some(kv.mod_revision),
                ),
                None => (Value::Null, None),
            };
            let mut bits = decode_bitmap(&obj, self.size);
            let out = change(&mut bits)?;
            let encoded = json!({
                "range": self.spec,
                "data": base64::engine::general_purpose::STANDARD.encode(&bits),
            });
            let bytes = serde_json::to_vec(&encoded).unwrap_or_default();
            let written = match rev {
                Some(r) => store.update(&self.key, bytes, r).await.map(|_| ()),
                None => store.create(&self.key, bytes).await.map(|_| ()),
            };
            match written {
                Ok(()) => return Ok(out),
                Err(StorageError::Conflict { .. }) | Err(StorageError::KeyExists(_)) => continue,
                Err(e) => return Err(AllocError::Store(e.to_string())),
            }
        }
        Err(AllocError::Store(
            "too much contention on the allocator".into(),
        ))
    }

    /// Allocate `wanted` if given, else the first free item at or after a
    /// starting point that spreads allocations.
    pub async fn allocate(
        &self,
        store: &dyn Store,
        wanted: Option<u64>,
        offset: u64,
    ) -> Result<u64, AllocError> {
        let size = self.size;
        self.update(store, |bits| {
            if let Some(i) = wanted {
                if i >= size {
                    return Err(AllocError::OutOfRange);
                }
                if get_bit(bits, i) {
                    return Err(AllocError::Taken);
                }
                set_bit(bits, i, true);
                return Ok(i);
            }
            for step in 0..size {
                let i = (offset + step) % size;
                if !get_bit(bits, i) {
                    set_bit(bits, i, true);
                    return Ok(i);
                }
            }
            Err(AllocError::Full)
        })
        .await
    }

    /// Free an item (freeing a free item is not an error).
    pub async fn release(&self, store: &dyn Store, item: u64) -> Result<(), AllocError> {
        if item >= self.size {
            return Ok(());
        }
        self.update(store, |bits| {
            set_bit(bits, item, false);
            Ok(())
        })
        .await
    }
}

/// The ClusterIP range: every address of the service CIDR except the
/// network and (for IPv4) broadcast addresses.
#[derive(Debug, Clone)]
pub struct IpRange {
    pub range: Range,
    base: u128,
    v4: bool,
}

impl IpRange {
    pub fn new(network: IpAddr, prefix: u8) -> IpRange {
        let (base, bits, v4) = match network {
            IpAddr::V4(a) => (u32::from(a) as u128, 32u32, true),
            IpAddr::V6(a) => (u128::from(a), 128u32, false),
        };
        let host_bits = bits.saturating_sub(prefix as u32).min(20);
        let total = 1u64 << host_bits;
        // Skip the network address, and the broadcast address for IPv4.
        let size = total.saturating_sub(if v4 { 2 } else { 1 }).max(1);
        IpRange {
            range: Range {
                key: "/registry/ranges/serviceips".into(),
                spec: format!("{network}/{prefix}"),
                size,
            },
            base: base + 1,
            v4,
        }
    }

    pub fn ip(&self, index: u64) -> IpAddr {
        let n = self.base + index as u128;
        if self.v4 {
            IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
        } else {
            IpAddr::V6(std::net::Ipv6Addr::from(n))
        }
    }

    pub fn index(&self, ip: IpAddr) -> Option<u64> {
        let n = match (ip, self.v4) {
            (IpAddr::V4(a), true) => u32::from(a) as u128,
            (IpAddr::V6(a), false) => u128::from(a),
            _ => return None,
        };
        let i = n.checked_sub(self.base)?;
        (i < self.range.size as u128).then_some(i as u64)
    }

    /// Allocate `wanted` or any free address.
    pub async fn allocate(
        &self,
        store: &dyn Store,
        wanted: Option<IpAddr>,
        field: &str,
    ) -> Result<IpAddr, ApiError> {
        let want = match wanted {
            Some(ip) => Some(self.index(ip).ok_or_else(|| {
                ApiError::invalid(
                    "Service",
                    "",
                    "",
                    vec![apimachinery::StatusCause::invalid(
                        field,
                        &json!(ip.to_string()),
                        &format!(
                            "provided IP is not in the valid range. The range of valid IPs is {}",
                            self.range.spec
                        ),
                    )],
                )
            })?),
            None => None,
        };
        // Spread dynamic allocations; the first addresses are usually
        // asked for by name (the API server's, the DNS service's).
        let offset = (uuid::Uuid::new_v4().as_u128() % self.range.size.max(1) as u128) as u64;
        match self.range.allocate(store, want, offset).await {
            Ok(i) => Ok(self.ip(i)),
            Err(AllocError::Taken) => Err(ApiError::invalid(
                "Service",
                "",
                "",
                vec![apimachinery::StatusCause::invalid(
                    field,
                    &json!(wanted.map(|w| w.to_string())),
                    "provided IP is already allocated",
                )],
            )),
            Err(AllocError::Full) => Err(ApiError::internal(
                "failed to allocate a serviceIP: range is full",
            )),
            Err(AllocError::OutOfRange) => Err(ApiError::bad_request("IP out of range")),
            Err(AllocError::Store(m)) => Err(storage_error(
                StorageError::Unavailable(m),
                "services",
                "",
                "",
            )),
        }
    }

    pub async fn release(&self, store: &dyn Store, ip: IpAddr) {
        if let Some(i) = self.index(ip) {
            if let Err(e) = self.range.release(store, i).await {
                tracing::warn!(%ip, error = ?e, "could not release a ClusterIP");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_range_skips_network_and_broadcast() {
        let r = IpRange::new("10.43.0.0".parse().unwrap(), 16);
        assert_eq!(r.range.size, 65534);
        assert_eq!(r.ip(0).to_string(), "10.43.0.1");
        assert_eq!(r.index("10.43.0.10".parse().unwrap()), Some(9));
        assert_eq!(r.index("10.43.255.255".parse().unwrap()), None);
        assert_eq!(r.index("10.44.0.1".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn allocations_are_unique_and_released_items_are_reusable() {
        let dir = tempfile::tempdir().unwrap();
        let store = storage::sqlite::SqliteStore::open(&dir.path().join("db")).unwrap();
        let range = Range {
            key: "/registry/ranges/test".into(),
            spec: "0-3".into(),
            size: 4,
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(range.allocate(&store, None, 1).await.unwrap());
        }
        got.sort();
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(range.allocate(&store, None, 0).await, Err(AllocError::Full));
        assert_eq!(
            range.allocate(&store, Some(2), 0).await,
            Err(AllocError::Taken)
        );
        range.release(&store, 2).await.unwrap();
        assert_eq!(range.allocate(&store, Some(2), 0).await, Ok(2));
        assert_eq!(
            range.allocate(&store, Some(9), 0).await,
            Err(AllocError::OutOfRange)
        );
    }
}
