//! Which identifiers the CA is willing to issue for (Boulder's `policy.WillingToIssue`).

use std::collections::BTreeSet;
use std::net::IpAddr;

use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::SubError;

/// RFC 1035 §2.3.4, in presentation form without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4.
const MAX_LABEL_LEN: usize = 63;
/// How many subproblems to spell out in the top-level detail.
const DETAIL_NAMES: usize = 1;

/// Checks one identifier's syntax and the rules that hold for every order.
///
/// DNS names must be lowercase ASCII (uppercase is refused rather than folded, so
/// the name the client sent is the name that is stored), at most 253 characters,
/// with at least two labels of 1–63 letters, digits and hyphens, no label starting
/// or ending with a hyphen, no trailing dot, and a top-level label that is not all
/// digits. An `xn--` label must be a valid IDNA A-label: its punycode decodes, and
/// IDNA processing of it gives the same label back. A wildcard may only be a whole
/// leading `*.` label over a name of at least two labels; it is authorized with
/// dns-01 alone. A name that is itself a public suffix (`co.uk`, `github.io`), or a
/// wildcard directly over one (`*.co.uk`), is refused with
/// [`ErrorKind::RejectedIdentifier`]: such a certificate would cover names held by
/// unrelated parties.
///
/// IP identifiers (RFC 8738) must be an address in its canonical text form. Whether
/// IP identifiers are allowed at all, and reserved ranges, are [`IdentifierPolicy`]'s
/// decision.
pub fn check_identifier(id: &Identifier) -> Result<(), Error> {
    match id.kind {
        IdentifierType::Dns => {
            check_dns_name(&id.value)?;
            check_public_suffix(&id.value)
        }
        IdentifierType::Ip => check_ip(&id.value),
    }
}

/// Checks an entry of an operator's allow or block list: a lowercase DNS name
/// without a wildcard, which stands for itself and every name under it. The error
/// says what is wrong with the entry.
pub fn check_domain_rule(entry: &str) -> Result<(), String> {
    if entry.starts_with("*.") {
        return Err(format!(
            "{entry:?} must be a name without \"*.\" (an entry already covers the names under it)"
        ));
    }
    check_dns_name(entry)
        .map_err(|err| format!("{entry:?} is not a valid DNS name: {}", err.detail))
}

/// The identifier rules an operator can tune.
///
/// [`IdentifierPolicy::default`] applies the syntax and public suffix rules of
/// [`check_identifier`] and nothing more (any TLD, any IP range, no lists); the RA's
/// config turns on the stricter rules a public CA runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierPolicy {
    /// Whether IP identifiers (RFC 8738) may be ordered.
    pub allow_ip_identifiers: bool,
    /// The most distinct identifiers one order may hold.
    pub max_names: usize,
    /// Whether a DNS name's top-level domain must be in the public suffix list. Off,
    /// names under reserved TLDs (`.example`, `.test`, `.internal`) may be issued for,
    /// as a lab or private CA wants.
    pub require_known_tld: bool,
    /// Whether IP identifiers in reserved ranges (private, loopback, link-local,
    /// documentation, multicast, …) may be ordered.
    pub allow_reserved_ips: bool,
    /// When not empty, every DNS name must be one of these names or under one
    /// (wildcards by their base name). Entries pass [`check_domain_rule`].
    pub allow: Vec<String>,
    /// DNS names that are refused, with every name under them; this wins over
    /// [`IdentifierPolicy::allow`]. Entries pass [`check_domain_rule`].
    pub block: Vec<String>,
}

impl Default for IdentifierPolicy {
    fn default() -> Self {
        Self {
            allow_ip_identifiers: false,
            max_names: 100,
            require_known_tld: false,
            allow_reserved_ips: true,
            allow: Vec::new(),
            block: Vec::new(),
        }
    }
}

impl IdentifierPolicy {
    /// Checks an order's identifiers and returns them deduplicated and sorted.
    ///
    /// Nothing is rewritten (a name with uppercase letters is refused, not
    /// lowercased). Every bad identifier gets its own subproblem in one error
    /// (RFC 8555 §6.7.1): its kind is the subproblems' kind when they agree, and
    /// [`ErrorKind::RejectedIdentifier`] otherwise.
    pub fn check(&self, ids: &[Identifier]) -> Result<Vec<Identifier>, Error> {
        if ids.is_empty() {
            return Err(Error::malformed("an order needs at least one identifier"));
        }
        let unique: BTreeSet<&Identifier> = ids.iter().collect();
        if unique.len() > self.max_names {
            return Err(Error::malformed(format!(
                "an order may hold at most {} identifiers, this one has {}",
                self.max_names,
                unique.len()
            )));
        }
        let problems: Vec<SubError> = unique
            .iter()
            .filter_map(|id| {
                self.check_one(id).err().map(|err| SubError {
                    identifier: (*id).clone(),
                    kind: err.kind,
                    detail: err.detail,
                })
            })
            .collect();
        if !problems.is_empty() {
            return Err(combine(problems));
        }
        Ok(unique.into_iter().cloned().collect())
    }

    fn check_one(&self, id: &Identifier) -> Result<(), Error> {
        check_identifier(id)?;
        match id.kind {
            IdentifierType::Ip => {
                if !self.allow_ip_identifiers {
                    return Err(rejected("IP identifiers are not enabled"));
                }
                if !self.allow_reserved_ips
                    && let Ok(ip) = id.value.parse::<IpAddr>()
                    && is_reserved(ip)
                {
                    return Err(rejected("IP address is in a reserved range"));
                }
            }
            IdentifierType::Dns => {
                let base = id.value.strip_prefix("*.").unwrap_or(&id.value);
                if self.require_known_tld
                    && !psl::suffix(base.as_bytes()).is_some_and(|suffix| suffix.is_known())
                {
                    return Err(rejected("DNS name is not under a known top-level domain"));
                }
                if self.block.iter().any(|entry| under(base, entry)) {
                    return Err(rejected("DNS name is blocked by the CA's policy"));
                }
                if !self.allow.is_empty() && !self.allow.iter().any(|entry| under(base, entry)) {
                    return Err(rejected(
                        "DNS name is not under an allowed domain of the CA's policy",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` is `entry` or a name under it.
fn under(name: &str, entry: &str) -> bool {
    name.strip_suffix(entry)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
}

/// Whether an IP address is outside the globally routed unicast space (the IANA
/// special-purpose registries, as far as they matter for certificates).
fn is_reserved(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                // 100.64.0.0/10, shared address space (RFC 6598).
                || (a == 100 && (64..128).contains(&b))
                // 192.0.0.0/24, IETF protocol assignments (RFC 6890).
                || (a == 192 && b == 0 && c == 0)
                // 198.18.0.0/15, benchmarking (RFC 2544).
                || (a == 198 && (b == 18 || b == 19))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_reserved(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                // fc00::/7, unique local (RFC 4193).
                || (first & 0xfe00) == 0xfc00
                // fe80::/10, link-local.
                || (first & 0xffc0) == 0xfe80
                // 2001:db8::/32, documentation (RFC 3849).
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                // Everything outside global unicast 2000::/3 (NAT64 64:ff9b::/96, discard 100::/64).
                || (first & 0xe000) != 0x2000
        }
    }
}

/// Refuses a name that is a public suffix, or a wildcard directly over one.
fn check_public_suffix(name: &str) -> Result<(), Error> {
    let (base, wildcard) = match name.strip_prefix("*.") {
        Some(base) => (base, true),
        None => (name, false),
    };
    if psl::suffix_str(base) == Some(base) {
        return Err(rejected(if wildcard {
            "a wildcard directly over a public suffix is not allowed"
        } else {
            "DNS name is a public suffix"
        }));
    }
    Ok(())
}

/// One error for all the bad identifiers of a request.
fn combine(problems: Vec<SubError>) -> Error {
    let Some(first) = problems.first() else {
        return Error::internal("no identifier problems to report");
    };
    let kind = if problems.iter().all(|p| p.kind == first.kind) {
        first.kind
    } else {
        ErrorKind::RejectedIdentifier
    };
    let mut detail = format!(
        "cannot issue for {:?}: {}",
        first.identifier.value, first.detail
    );
    if problems.len() > DETAIL_NAMES {
        detail.push_str(&format!(
            " (and {} more problems, see the subproblems)",
            problems.len() - DETAIL_NAMES
        ));
    }
    Error::new(kind, detail).with_subproblems(problems)
}

fn rejected(detail: &str) -> Error {
    Error::new(ErrorKind::RejectedIdentifier, detail)
}

fn check_ip(value: &str) -> Result<(), Error> {
    let Ok(ip) = value.parse::<IpAddr>() else {
        return Err(Error::malformed("IP identifier is not an IP address"));
    };
    let canonical = ip.to_string();
    if canonical != value {
        return Err(Error::malformed(format!(
            "IP identifier is not in canonical form (expected {canonical:?})"
        )));
    }
    Ok(())
}

fn check_dns_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::malformed("DNS name is empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::malformed(format!(
            "DNS name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if !name.is_ascii() {
        return Err(Error::malformed(
            "DNS name contains non-ASCII characters; use its xn-- (punycode) form",
        ));
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(rejected(
            "DNS name contains uppercase letters; identifiers must be lowercase",
        ));
    }
    if name.ends_with('.') {
        return Err(Error::malformed("DNS name must not end with a dot"));
    }
    let base = name.strip_prefix("*.").unwrap_or(name);
    if base.contains('*') {
        return Err(Error::malformed(
            "a wildcard is allowed only as the whole leftmost label (\"*.\")",
        ));
    }
    let labels: Vec<&str> = base.split('.').collect();
    if labels.len() < 2 {
        return Err(Error::malformed("DNS name needs at least two labels"));
    }
    for label in &labels {
        check_label(label)?;
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::malformed(
            "DNS name has an all-numeric top-level domain",
        ));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() {
        return Err(Error::malformed("DNS name has an empty label"));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(Error::malformed(format!(
            "DNS name has a label longer than {MAX_LABEL_LEN} characters"
        )));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::malformed("DNS name contains an invalid character"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(Error::malformed(
            "a DNS label must not start or end with a hyphen",
        ));
    }
    // RFC 5891 §4.2.3.1: hyphens in the third and fourth positions mark a reserved
    // label; of those, only IDNA A-labels ("xn--") are in use.
    if label.get(2..4) == Some("--") && !label.starts_with("xn--") {
        return Err(Error::malformed(
            "DNS label has hyphens in the third and fourth positions but is not an xn-- label",
        ));
    }
    if label.starts_with("xn--") {
        check_a_label(label)?;
    }
    Ok(())
}

/// An `xn--` label must be an IDNA A-label: valid punycode that IDNA processing
/// (UTS #46, strict) turns back into the same label.
fn check_a_label(label: &str) -> Result<(), Error> {
    let decodes = idna::punycode::decode_to_string(&label["xn--".len()..])
        .is_some_and(|unicode| !unicode.is_ascii());
    if !decodes || idna::domain_to_ascii_strict(label).ok().as_deref() != Some(label) {
        return Err(Error::malformed(
            "DNS label starts with xn-- but is not a valid IDNA A-label",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
