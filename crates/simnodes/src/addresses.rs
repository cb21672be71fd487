//! Fake addresses: node InternalIPs from 10.128.0.0/10, pod IPs from the
//! node's `spec.podCIDR` (assigned by node IPAM) or, while it has none, a
//! per-node /24 out of 100.64.0.0/10. Nothing here is routable; the
//! addresses only have to be unique and well-formed.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

/// An IPv4 CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// Parse `a.b.c.d/n`; host bits are cleared. None for IPv6 or garbage.
    pub fn parse(text: &str) -> Option<Ipv4Cidr> {
        let (addr, prefix) = text.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        Some(Ipv4Cidr {
            base: u32::from(addr) & mask(prefix),
            prefix,
        })
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`th pod address: skips the network address and the first host
    /// (the node's bridge, by convention) and never reaches the broadcast
    /// address; wraps around when the block is used up.
    pub fn pod_ip(&self, n: u64) -> Ipv4Addr {
        let usable = self.size().saturating_sub(3).max(1);
        let offset = if self.size() >= 4 { 2 + n % usable } else { 0 };
        Ipv4Addr::from(self.base.wrapping_add(offset as u32))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// A number identifying a simulated node across processes: processes with
/// different name prefixes land in different 65536-node blocks.
pub fn node_ordinal(name_prefix: &str, index: usize) -> u32 {
    let mut hasher = DefaultHasher::new();
    name_prefix.hash(&mut hasher);
    let block = (hasher.finish() % 64) as u32;
    block * 65_536 + (index as u32 % 65_536)
}

/// The node's InternalIP: 10.128.0.0/10 plus its ordinal (never .0 of the block).
pub fn node_internal_ip(ordinal: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 1)).wrapping_add(ordinal % (1 << 22)))
}

/// The /24 a node's pods use until node IPAM gives it a podCIDR.
pub fn fallback_pod_cidr(ordinal: u32) -> Ipv4Cidr {
    Ipv4Cidr {
        base: u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (ordinal % 16_384) * 256,
        prefix: 24,
    }
}

/// 64 hex digits derived from `seed`: fake image digests and container IDs.
pub fn fake_digest(seed: &str) -> String {
    (0..4u8)
        .map(|round| {
            let mut hasher = DefaultHasher::new();
            (round, seed).hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_clears_host_bits_and_rejects_garbage() {
        let cidr = Ipv4Cidr::parse("10.42.3.7/24").unwrap();
        assert_eq!(Ipv4Addr::from(cidr.base), Ipv4Addr::new(10, 42, 3, 0));
        assert_eq!(cidr.prefix, 24);
        assert!(Ipv4Cidr::parse("fd00::/64").is_none());
        assert!(Ipv4Cidr::parse("10.0.0.0/33").is_none());
        assert!(Ipv4Cidr::parse("10.0.0.0").is_none());
    }

    #[test]
    fn pod_ips_skip_network_and_gateway_and_wrap_before_broadcast() {
        let cidr = Ipv4Cidr::parse("10.42.1.0/24").unwrap();
        assert_eq!(cidr.pod_ip(0), Ipv4Addr::new(10, 42, 1, 2));
        assert_eq!(cidr.pod_ip(252), Ipv4Addr::new(10, 42, 1, 254));
        assert_eq!(cidr.pod_ip(253), Ipv4Addr::new(10, 42, 1, 2));
    }

    #[test]
    fn node_addresses_differ_between_prefixes_and_indexes() {
        let a = node_internal_ip(node_ordinal("sim-node-", 0));
        let b = node_internal_ip(node_ordinal("sim-node-", 1));
        assert_ne!(a, b);
        assert_eq!(fake_digest("x").len(), 64);
        assert_ne!(fake_digest("x"), fake_digest("y"));
    }

    #[test]
    fn fallback_pod_cidrs_are_distinct_slash_24s() {
        let a = fallback_pod_cidr(0);
        let b = fallback_pod_cidr(1);
        assert_eq!(b.base - a.base, 256);
        assert_eq!(Ipv4Addr::from(a.base), Ipv4Addr::new(100, 64, 0, 0));
    }
}
