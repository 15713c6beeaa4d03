//! Which addresses the VA refuses to connect to (SSRF protection).
//!
//! The list follows the IANA special-purpose address registries (RFC 6890 and
//! its updates) and Boulder's `policy` reserved networks: nothing that is not a
//! globally routable unicast address is ever fetched, unless the operator sets
//! `allow_private_addresses`.

use std::net::IpAddr;
use std::net::Ipv4Addr;
use std::net::Ipv6Addr;

use basalt_core::Error;
use basalt_core::ErrorKind;

/// Reserved IPv4 networks: (address, prefix length, why).
const RESERVED_V4: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" (RFC 791)"),
    ([10, 0, 0, 0], 8, "private use (RFC 1918)"),
    ([100, 64, 0, 0], 10, "shared address space (RFC 6598)"),
    ([127, 0, 0, 0], 8, "loopback (RFC 1122)"),
    ([169, 254, 0, 0], 16, "link local (RFC 3927)"),
    ([172, 16, 0, 0], 12, "private use (RFC 1918)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments (RFC 6890)"),
    ([192, 0, 2, 0], 24, "documentation (RFC 5737)"),
    ([192, 31, 196, 0], 24, "AS112-v4 (RFC 7535)"),
    ([192, 52, 193, 0], 24, "AMT (RFC 7450)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (RFC 7526)"),
    ([192, 168, 0, 0], 16, "private use (RFC 1918)"),
    (
        [192, 175, 48, 0],
        24,
        "direct delegation AS112 service (RFC 7534)",
    ),
    ([198, 18, 0, 0], 15, "benchmarking (RFC 2544)"),
    ([198, 51, 100, 0], 24, "documentation (RFC 5737)"),
    ([203, 0, 113, 0], 24, "documentation (RFC 5737)"),
    ([224, 0, 0, 0], 4, "multicast (RFC 5771)"),
    (
        [240, 0, 0, 0],
        4,
        "reserved (RFC 1112), including broadcast",
    ),
];

/// Reserved IPv6 networks: (address, prefix length, why). IPv4-mapped
/// addresses (`::ffff:0:0/96`) are judged by the IPv4 address they carry.
const RESERVED_V6: &[(Ipv6Addr, u8, &str)] = &[
    (
        Ipv6Addr::UNSPECIFIED,
        96,
        "unspecified, loopback and IPv4-compatible (RFC 4291)",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
        96,
        "IPv4/IPv6 translation (RFC 6052)",
    ),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only (RFC 6666)",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments (RFC 2928)",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation (RFC 3849)",
    ),
    (
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        "6to4 (RFC 3056)",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (RFC 9637)",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (RFC 4193)",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link local (RFC 4291)",
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site local (RFC 3879)",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast (RFC 4291)",
    ),
];

/// Whether `ip` is in a reserved range: loopback, private, link-local, shared
/// (CGNAT), unspecified, multicast, broadcast, documentation, benchmarking,
/// unique-local, translation prefixes, or an IPv4-mapped IPv6 address of any
/// of these. The VA refuses to connect to such an address unless
/// `allow_private_addresses` is set.
pub fn is_reserved(ip: IpAddr) -> bool {
    reserved_reason(ip).is_some()
}

/// Why `ip` is reserved, or `None` for a public unicast address.
pub fn reserved_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => reserved_v4(v4),
            None => reserved_v6(v6),
        },
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let ip = u32::from(ip);
    RESERVED_V4
        .iter()
        .find(|(net, prefix, _)| ip & mask32(*prefix) == u32::from_be_bytes(*net))
        .map(|(_, _, why)| *why)
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let ip = u128::from(ip);
    RESERVED_V6
        .iter()
        .find(|(net, prefix, _)| ip & mask128(*prefix) == u128::from(*net))
        .map(|(_, _, why)| *why)
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses_are_refused() {
        let reserved = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.10",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:2::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "2002:c000:0204::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::1:3",
        ];
        for text in reserved {
            let ip: IpAddr = text.parse().unwrap();
            assert!(is_reserved(ip), "{text} should be reserved");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "fbff::1",
        ];
        for text in public {
            let ip: IpAddr = text.parse().unwrap();
            assert!(!is_reserved(ip), "{text} should be public");
        }
    }

    #[test]
    fn reasons_name_the_range() {
        let reason = |text: &str| reserved_reason(text.parse().unwrap());
        assert_eq!(reason("10.0.0.1"), Some("private use (RFC 1918)"));
        assert_eq!(reason("::ffff:192.168.0.1"), Some("private use (RFC 1918)"));
        assert_eq!(reason("fd00::1"), Some("unique local (RFC 4193)"));
        assert_eq!(reason("93.184.216.34"), None);
    }
}

/// Which addresses validation may connect to: public ones only, or (in a lab)
/// any. Every connection of every challenge asks [`AddressPolicy::refusal`] first.
#[derive(Clone, Debug, Default)]
pub(crate) struct AddressPolicy {
    allow_private: bool,
    /// Reserved addresses a test treats as public, so that a test server on one
    /// loopback address stands for the Internet while another loopback address
    /// stands for a private network.
    #[cfg(test)]
    public_for_tests: Vec<IpAddr>,
}

impl AddressPolicy {
    /// Public addresses only, or any address with `allow_private`.
    pub(crate) fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            #[cfg(test)]
            public_for_tests: Vec::new(),
        }
    }

    /// Why a connection to `ip` is refused, or `None` when it is allowed.
    pub(crate) fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private {
            return None;
        }
        #[cfg(test)]
        if self.public_for_tests.contains(&ip) {
            return None;
        }
        reserved_reason(ip)
    }

    /// The addresses of `resolved` to try, in order: the first allowed IPv6 address,
    /// then the first allowed IPv4 one. None allowed is the subscriber's problem: a
    /// `dns` one for a name (`by_name`, called `host`), a `connection` one for an
    /// address given directly.
    pub(crate) fn candidates(
        &self,
        host: &str,
        by_name: bool,
        resolved: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Error> {
        let allowed: Vec<IpAddr> = resolved
            .iter()
            .copied()
            .filter(|ip| self.refusal(*ip).is_none())
            .collect();
        if allowed.is_empty() {
            let why = resolved
                .first()
                .and_then(|ip| self.refusal(*ip).map(|why| format!("{ip} is {why}")))
                .unwrap_or_default();
            tracing::warn!(host, ?resolved, "refusing reserved addresses");
            return Err(if by_name {
                Error::new(
                    ErrorKind::Dns,
                    format!("no public addresses for {host}: {why}"),
                )
            } else {
                Error::new(
                    ErrorKind::Connection,
                    format!("refusing to connect to {why}"),
                )
            });
        }
        let v6 = allowed.iter().copied().find(IpAddr::is_ipv6);
        let v4 = allowed.iter().copied().find(IpAddr::is_ipv4);
        Ok(v6.into_iter().chain(v4).collect())
    }

    /// This policy, with `ip` treated as public.
    #[cfg(test)]
    pub(crate) fn treating_as_public(mut self, ip: IpAddr) -> Self {
        self.public_for_tests.push(ip);
        self
    }
}
