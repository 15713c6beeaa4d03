//! The limits Basalt enforces and the buckets a request spends from.

use std::fmt;
use std::net::IpAddr;
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::Duration;

use basalt_core::AccountId;
use basalt_core::Error;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::RateLimit;
use serde::Deserialize;
use serde::Serialize;
use sha2::Digest;
use sha2::Sha256;

const HOUR: u64 = 3600;

/// A rate limit. Its snake_case name is stable: it appears in config, in Redis
/// keys, in problem details and in the admin tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitName {
    /// Certificates per registered domain (eTLD+1), IPv4 address or IPv6 `/64`.
    CertificatesPerDomain,
    /// Certificates per exact set of identifiers (renewals of one certificate).
    CertificatesPerFqdnSet,
    /// Failed authorizations per identifier per account.
    FailedAuthorizationsPerDomainPerAccount,
    /// New accounts per IP address.
    NewAccountsPerIp,
    /// New accounts per IPv6 `/48`, so one holder of a large range cannot
    /// sidestep [`Self::NewAccountsPerIp`].
    NewAccountsPerIpv6Range,
    /// New orders per account.
    NewOrdersPerAccount,
}

impl LimitName {
    /// Every limit.
    pub const ALL: [Self; 6] = [
        Self::CertificatesPerDomain,
        Self::CertificatesPerFqdnSet,
        Self::FailedAuthorizationsPerDomainPerAccount,
        Self::NewAccountsPerIp,
        Self::NewAccountsPerIpv6Range,
        Self::NewOrdersPerAccount,
    ];

    /// The limit's stable name, e.g. `new_orders_per_account`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertificatesPerDomain => "certificates_per_domain",
            Self::CertificatesPerFqdnSet => "certificates_per_fqdn_set",
            Self::FailedAuthorizationsPerDomainPerAccount => {
                "failed_authorizations_per_domain_per_account"
            }
            Self::NewAccountsPerIp => "new_accounts_per_ip",
            Self::NewAccountsPerIpv6Range => "new_accounts_per_ipv6_range",
            Self::NewOrdersPerAccount => "new_orders_per_account",
        }
    }

    /// The limit when the config does not change it: Let's Encrypt's published
    /// limits.
    pub fn default_rate(self) -> RateLimit {
        let (count, hours) = match self {
            Self::CertificatesPerDomain => (50, 168),
            Self::CertificatesPerFqdnSet => (5, 168),
            Self::FailedAuthorizationsPerDomainPerAccount => (5, 1),
            Self::NewAccountsPerIp => (10, 3),
            Self::NewAccountsPerIpv6Range => (500, 3),
            Self::NewOrdersPerAccount => (300, 3),
        };
        RateLimit {
            count,
            period: Duration::from_secs(hours * HOUR),
            burst: count,
        }
    }

    /// What a denial says the subscriber did too often, naming the bucket's key.
    pub(crate) fn describe(self, key: &str) -> String {
        match self {
            Self::CertificatesPerDomain => {
                format!("too many certificates for the registered domain {key}")
            }
            Self::CertificatesPerFqdnSet => {
                format!("too many certificates for this exact set of identifiers (set {key})")
            }
            Self::FailedAuthorizationsPerDomainPerAccount => match key.split_once(':') {
                Some((account, identifier)) => {
                    format!("too many failed authorizations for {identifier} by account {account}")
                }
                None => format!("too many failed authorizations for {key}"),
            },
            Self::NewAccountsPerIp => format!("too many new accounts from {key}"),
            Self::NewAccountsPerIpv6Range => {
                format!("too many new accounts from the IPv6 range {key}")
            }
            Self::NewOrdersPerAccount => format!("too many new orders for account {key}"),
        }
    }

    /// `key` written as this limit's buckets spell it, so an override matches the
    /// transactions the builders make: addresses in canonical form, IPv6 networks
    /// reduced to their prefix, DNS names lowercased and reduced to their
    /// registered domain, an identifier set (comma-separated) hashed. The error
    /// says what the key should look like.
    pub(crate) fn canonical_key(self, key: &str) -> Result<String, String> {
        let key = key.trim();
        if key.is_empty() {
            return Err("must not be empty".to_owned());
        }
        match self {
            Self::CertificatesPerDomain => {
                if let Some((address, prefix)) = key.split_once('/') {
                    return match (address.parse::<Ipv6Addr>(), prefix) {
                        (Ok(address), "64") => Ok(ipv6_network(address, 64)),
                        _ => Err(format!(
                            "{key:?} is not an IPv6 /64 network such as 2001:db8:1:2::/64"
                        )),
                    };
                }
                let kind = if key.parse::<IpAddr>().is_ok() {
                    IdentifierType::Ip
                } else {
                    IdentifierType::Dns
                };
                let domain = domain_key(&Identifier {
                    kind,
                    value: key.to_owned(),
                });
                if domain.is_empty() {
                    return Err(format!("{key:?} is not a domain name"));
                }
                Ok(domain)
            }
            Self::CertificatesPerFqdnSet => {
                if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(key.to_ascii_lowercase());
                }
                Ok(fqdn_set_hash(key.split(',').map(str::trim)))
            }
            Self::FailedAuthorizationsPerDomainPerAccount => {
                let expected =
                    || format!("{key:?} is not <account id>:<identifier>, e.g. 42:www.example.com");
                let (account, identifier) = key.split_once(':').ok_or_else(expected)?;
                let account: AccountId = account.parse().map_err(|_| expected())?;
                if identifier.is_empty() {
                    return Err(expected());
                }
                Ok(failed_authorization_key(account, identifier))
            }
            Self::NewAccountsPerIp => key
                .parse::<IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .map_err(|_| format!("{key:?} is not an IP address")),
            Self::NewAccountsPerIpv6Range => {
                let address = key.strip_suffix("/48").unwrap_or(key);
                address
                    .parse::<Ipv6Addr>()
                    .map(|address| ipv6_network(address, 48))
                    .map_err(|_| {
                        format!("{key:?} is not an IPv6 /48 network such as 2001:db8:1::/48")
                    })
            }
            Self::NewOrdersPerAccount => key
                .parse::<AccountId>()
                .map(|account| account.to_string())
                .map_err(|_| format!("{key:?} is not an account ID")),
        }
    }
}

impl fmt::Display for LimitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LimitName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|limit| limit.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|limit| limit.as_str()).collect();
                Error::malformed(format!(
                    "{s:?} is not a rate limit; use one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// One bucket to spend from: `cost` requests against `limit` for `key`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// The limit.
    pub limit: LimitName,
    /// The bucket's key under that limit, as the builders below spell it.
    pub key: String,
    /// How many requests this is; the builders use 1.
    pub cost: u32,
}

impl Transaction {
    /// A transaction of cost 1.
    pub fn new(limit: LimitName, key: impl Into<String>) -> Self {
        Self {
            limit,
            key: key.into(),
            cost: 1,
        }
    }

    /// A new account from `ip`: `new_accounts_per_ip` keyed by the address (IPv4,
    /// or the full IPv6 address) and, for IPv6, `new_accounts_per_ipv6_range` keyed
    /// by its `/48` network written as `2001:db8:1::/48`. An IPv4-mapped IPv6
    /// address counts as the IPv4 address it carries.
    pub fn new_accounts(ip: IpAddr) -> Vec<Self> {
        match ip.to_canonical() {
            IpAddr::V4(v4) => vec![Self::new(LimitName::NewAccountsPerIp, v4.to_string())],
            IpAddr::V6(v6) => vec![
                Self::new(LimitName::NewAccountsPerIp, v6.to_string()),
                Self::new(LimitName::NewAccountsPerIpv6Range, ipv6_network(v6, 48)),
            ],
        }
    }

    /// A new order: `new_orders_per_account` keyed by the decimal account ID.
    pub fn new_order(account: AccountId) -> Self {
        Self::new(LimitName::NewOrdersPerAccount, account.to_string())
    }

    /// A certificate for `identifiers`: `certificates_per_domain`, one transaction
    /// per distinct registered domain (eTLD+1 by the public suffix list) of the DNS
    /// identifiers, a `*.` prefix stripped; a name that is itself a public suffix
    /// or has no registrable domain counts as itself. An IP identifier counts as
    /// the address, an IPv6 one as its `/64` network. Sorted and deduplicated.
    pub fn certificates_per_domain(identifiers: &[Identifier]) -> Vec<Self> {
        let mut keys: Vec<String> = identifiers.iter().map(domain_key).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|key| Self::new(LimitName::CertificatesPerDomain, key))
            .collect()
    }

    /// A certificate for exactly `identifiers`: `certificates_per_fqdn_set` keyed by
    /// the lowercase hex SHA-256 of the sorted, deduplicated, lowercased identifier
    /// values joined by `,`.
    pub fn certificates_per_fqdn_set(identifiers: &[Identifier]) -> Self {
        Self::new(
            LimitName::CertificatesPerFqdnSet,
            fqdn_set_hash(identifiers.iter().map(|id| id.value.as_str())),
        )
    }

    /// A failed authorization: `failed_authorizations_per_domain_per_account` keyed
    /// by `<account id>:<identifier value>` (the value lowercased).
    pub fn failed_authorization(account: AccountId, identifier: &Identifier) -> Self {
        Self::new(
            LimitName::FailedAuthorizationsPerDomainPerAccount,
            failed_authorization_key(account, &identifier.value),
        )
    }
}

/// The `/prefix` network of `address`, e.g. `2001:db8:1::/48`.
fn ipv6_network(address: Ipv6Addr, prefix: u32) -> String {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    let network = Ipv6Addr::from(u128::from(address) & mask);
    format!("{network}/{prefix}")
}

/// The `certificates_per_domain` key of one identifier.
fn domain_key(identifier: &Identifier) -> String {
    let value = identifier.value.trim().to_ascii_lowercase();
    if identifier.kind == IdentifierType::Ip {
        return match value.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Ok(IpAddr::V6(v6)) => ipv6_network(v6, 64),
            // The policy refuses such identifiers before they get here; count the
            // text as it is rather than fail.
            Err(_) => value,
        };
    }
    let name = value.strip_prefix("*.").unwrap_or(&value);
    let name = name.strip_suffix('.').unwrap_or(name);
    psl::domain_str(name).unwrap_or(name).to_owned()
}

/// The `certificates_per_fqdn_set` key of a set of identifier values.
fn fqdn_set_hash<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut values: Vec<String> = values.map(str::to_ascii_lowercase).collect();
    values.sort();
    values.dedup();
    hex::encode(Sha256::digest(values.join(",").as_bytes()))
}

/// The `failed_authorizations_per_domain_per_account` key.
fn failed_authorization_key(account: AccountId, identifier: &str) -> String {
    format!("{account}:{}", identifier.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use basalt_core::ErrorKind;

    use super::*;

    fn keys(transactions: &[Transaction]) -> Vec<(LimitName, &str)> {
        transactions
            .iter()
            .map(|t| (t.limit, t.key.as_str()))
            .collect()
    }

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_valid() {
        for limit in LimitName::ALL {
            assert_eq!(limit.as_str().parse::<LimitName>().unwrap(), limit);
            assert_eq!(limit.to_string(), limit.as_str());
        }
        let err = "new_order_per_account".parse::<LimitName>().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        for limit in LimitName::ALL {
            assert!(err.detail.contains(limit.as_str()), "{err}");
        }
    }

    #[test]
    fn defaults_are_the_published_limits() {
        let orders = LimitName::NewOrdersPerAccount.default_rate();
        assert_eq!(
            (orders.count, orders.period, orders.burst),
            (300, Duration::from_secs(3 * 3600), 300)
        );
        let domain = LimitName::CertificatesPerDomain.default_rate();
        assert_eq!(
            (domain.count, domain.period),
            (50, Duration::from_secs(7 * 86_400))
        );
        assert_eq!(LimitName::CertificatesPerFqdnSet.default_rate().count, 5);
        assert_eq!(LimitName::NewAccountsPerIp.default_rate().count, 10);
        assert_eq!(LimitName::NewAccountsPerIpv6Range.default_rate().count, 500);
        let failed = LimitName::FailedAuthorizationsPerDomainPerAccount.default_rate();
        assert_eq!(
            (failed.count, failed.period),
            (5, Duration::from_secs(3600))
        );
    }

    #[test]
    fn new_accounts_use_the_address_and_the_ipv6_48() {
        let v4 = Transaction::new_accounts("192.0.2.7".parse().unwrap());
        assert_eq!(keys(&v4), [(LimitName::NewAccountsPerIp, "192.0.2.7")]);
        let v6 = Transaction::new_accounts("2001:DB8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(
            keys(&v6),
            [
                (LimitName::NewAccountsPerIp, "2001:db8:1:2:3:4:5:6"),
                (LimitName::NewAccountsPerIpv6Range, "2001:db8:1::/48"),
            ]
        );
        let mapped = Transaction::new_accounts("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(keys(&mapped), [(LimitName::NewAccountsPerIp, "192.0.2.7")]);
        assert!(v6.iter().all(|t| t.cost == 1));
    }

    #[test]
    fn new_orders_use_the_account() {
        let t = Transaction::new_order(AccountId(42));
        assert_eq!(
            (t.limit, t.key.as_str(), t.cost),
            (LimitName::NewOrdersPerAccount, "42", 1)
        );
    }

    #[test]
    fn certificates_count_against_registered_domains() {
        let identifiers = [
            Identifier::dns("a.b.example.co.uk"),
            Identifier::dns("*.Example.co.uk"),
            Identifier::dns("www.example.com"),
            Identifier::dns("example.com"),
            Identifier::dns("co.uk"),
            Identifier::dns("localhost"),
            Identifier::dns("foo.bar.github.io"),
            Identifier::ip("192.0.2.1"),
            Identifier::ip("2001:db8:1:2:3:4:5:6"),
            Identifier::ip("2001:db8:1:2::9"),
        ];
        let transactions = Transaction::certificates_per_domain(&identifiers);
        let got: Vec<&str> = transactions.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            got,
            [
                "192.0.2.1",
                "2001:db8:1:2::/64",
                "bar.github.io",
                "co.uk",
                "example.co.uk",
                "example.com",
                "localhost",
            ]
        );
        assert!(
            transactions
                .iter()
                .all(|t| t.limit == LimitName::CertificatesPerDomain && t.cost == 1)
        );
    }

    #[test]
    fn fqdn_sets_hash_the_sorted_lowercased_names() {
        let a = Transaction::certificates_per_fqdn_set(&[
            Identifier::dns("www.example.com"),
            Identifier::dns("Example.com"),
            Identifier::dns("example.com"),
        ]);
        let b = Transaction::certificates_per_fqdn_set(&[
            Identifier::dns("example.com"),
            Identifier::dns("www.example.com"),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.limit, LimitName::CertificatesPerFqdnSet);
        assert_eq!(
            a.key,
            hex::encode(Sha256::digest(b"example.com,www.example.com"))
        );
        let other = Transaction::certificates_per_fqdn_set(&[Identifier::dns("example.com")]);
        assert_ne!(a.key, other.key);
    }

    #[test]
    fn failed_authorizations_use_account_and_identifier() {
        let t =
            Transaction::failed_authorization(AccountId(7), &Identifier::dns("WWW.example.com"));
        assert_eq!(
            (t.limit, t.key.as_str()),
            (
                LimitName::FailedAuthorizationsPerDomainPerAccount,
                "7:www.example.com"
            )
        );
    }

    #[test]
    fn override_keys_are_written_as_the_builders_write_them() {
        let cases = [
            (LimitName::NewAccountsPerIp, "2001:DB8::1", "2001:db8::1"),
            (LimitName::NewAccountsPerIp, "::ffff:192.0.2.1", "192.0.2.1"),
            (
                LimitName::NewAccountsPerIpv6Range,
                "2001:db8:1:ffff::",
                "2001:db8:1::/48",
            ),
            (
                LimitName::NewAccountsPerIpv6Range,
                "2001:db8:1::/48",
                "2001:db8:1::/48",
            ),
            (LimitName::NewOrdersPerAccount, " 42 ", "42"),
            (
                LimitName::CertificatesPerDomain,
                "www.Example.co.uk",
                "example.co.uk",
            ),
            (
                LimitName::CertificatesPerDomain,
                "2001:db8:1:2::9",
                "2001:db8:1:2::/64",
            ),
            (
                LimitName::CertificatesPerDomain,
                "2001:db8:1:2:ff::/64",
                "2001:db8:1:2::/64",
            ),
            (
                LimitName::FailedAuthorizationsPerDomainPerAccount,
                "7:WWW.example.com",
                "7:www.example.com",
            ),
        ];
        for (limit, key, want) in cases {
            assert_eq!(limit.canonical_key(key).unwrap(), want, "{limit} {key}");
        }
        let set = Transaction::certificates_per_fqdn_set(&[
            Identifier::dns("example.com"),
            Identifier::dns("www.example.com"),
        ]);
        let fqdn = LimitName::CertificatesPerFqdnSet;
        assert_eq!(
            fqdn.canonical_key("www.example.com, example.com").unwrap(),
            set.key
        );
        assert_eq!(
            fqdn.canonical_key(&set.key.to_ascii_uppercase()).unwrap(),
            set.key
        );
        for (limit, bad) in [
            (LimitName::NewAccountsPerIp, "example.com"),
            (LimitName::NewAccountsPerIpv6Range, "192.0.2.1"),
            (LimitName::NewAccountsPerIpv6Range, "2001:db8::/64"),
            (LimitName::NewOrdersPerAccount, "acct-42"),
            (LimitName::NewOrdersPerAccount, "0"),
            (LimitName::CertificatesPerDomain, "2001:db8::/48"),
            (LimitName::FailedAuthorizationsPerDomainPerAccount, "42"),
            (
                LimitName::FailedAuthorizationsPerDomainPerAccount,
                "x:a.com",
            ),
            (LimitName::FailedAuthorizationsPerDomainPerAccount, "42:"),
            (LimitName::NewOrdersPerAccount, "  "),
        ] {
            assert!(limit.canonical_key(bad).is_err(), "{limit} {bad:?}");
        }
    }
}
