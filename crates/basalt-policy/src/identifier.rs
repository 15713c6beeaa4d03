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
/// digits. `xn--` labels are accepted when they are LDH; deeper IDNA checks come
/// later. A wildcard may only be a whole leading `*.` label over a name of at least
/// two labels; it is authorized with dns-01 alone.
///
/// IP identifiers (RFC 8738) must be an address in its canonical text form. Whether
/// IP identifiers are allowed at all is [`IdentifierPolicy`]'s decision.
pub fn check_identifier(id: &Identifier) -> Result<(), Error> {
    match id.kind {
        IdentifierType::Dns => check_dns_name(&id.value),
        IdentifierType::Ip => check_ip(&id.value),
    }
}

/// The identifier rules an operator can tune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentifierPolicy {
    /// Whether IP identifiers (RFC 8738) may be ordered.
    pub allow_ip_identifiers: bool,
    /// The most distinct identifiers one order may hold.
    pub max_names: usize,
}

impl Default for IdentifierPolicy {
    fn default() -> Self {
        Self {
            allow_ip_identifiers: false,
            max_names: 100,
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
        if id.kind == IdentifierType::Ip && !self.allow_ip_identifiers {
            return Err(rejected("IP identifiers are not enabled"));
        }
        Ok(())
    }
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(id: &Identifier) -> Option<ErrorKind> {
        check_identifier(id).err().map(|err| err.kind)
    }

    #[test]
    fn dns_name_rules() {
        let long_label = "a".repeat(64);
        let label_63 = "a".repeat(63);
        let ok_long = format!("{label_63}.{label_63}.{label_63}.{}.com", "a".repeat(57));
        assert_eq!(ok_long.len(), 253);
        let too_long = format!("a{ok_long}");
        let cases: Vec<(String, Option<ErrorKind>)> = vec![
            ("example.com".into(), None),
            ("a.b.c.example.co.uk".into(), None),
            ("xn--bcher-kva.example".into(), None),
            ("a-b.example".into(), None),
            ("1.example.com".into(), None),
            (format!("{label_63}.com"), None),
            (ok_long, None),
            (too_long, Some(ErrorKind::Malformed)),
            (format!("{long_label}.com"), Some(ErrorKind::Malformed)),
            ("Example.com".into(), Some(ErrorKind::RejectedIdentifier)),
            ("".into(), Some(ErrorKind::Malformed)),
            ("com".into(), Some(ErrorKind::Malformed)),
            ("example.com.".into(), Some(ErrorKind::Malformed)),
            ("example..com".into(), Some(ErrorKind::Malformed)),
            (".example.com".into(), Some(ErrorKind::Malformed)),
            ("-a.example".into(), Some(ErrorKind::Malformed)),
            ("a-.example".into(), Some(ErrorKind::Malformed)),
            ("ab--c.example".into(), Some(ErrorKind::Malformed)),
            ("xn--.example".into(), Some(ErrorKind::Malformed)),
            ("a_b.example".into(), Some(ErrorKind::Malformed)),
            ("a b.example".into(), Some(ErrorKind::Malformed)),
            ("bücher.example".into(), Some(ErrorKind::Malformed)),
            ("1.2.3.4".into(), Some(ErrorKind::Malformed)),
            ("example.123".into(), Some(ErrorKind::Malformed)),
            ("*.example.com".into(), None),
            ("*".into(), Some(ErrorKind::Malformed)),
            ("*.com".into(), Some(ErrorKind::Malformed)),
            ("**.example.com".into(), Some(ErrorKind::Malformed)),
            ("*.*.example.com".into(), Some(ErrorKind::Malformed)),
            ("a.*.example.com".into(), Some(ErrorKind::Malformed)),
            ("a*.example.com".into(), Some(ErrorKind::Malformed)),
        ];
        for (name, want) in cases {
            assert_eq!(kind_of(&Identifier::dns(name.clone())), want, "{name:?}");
        }
    }

    #[test]
    fn uppercase_details_say_why() {
        let err = check_identifier(&Identifier::dns("WWW.example.com")).unwrap_err();
        assert!(err.detail.contains("lowercase"), "{}", err.detail);
    }

    #[test]
    fn ip_identifiers_must_be_canonical() {
        let cases = [
            ("192.0.2.1", None),
            ("2001:db8::1", None),
            ("::1", None),
            ("2001:DB8::1", Some(ErrorKind::Malformed)),
            ("2001:db8:0::1", Some(ErrorKind::Malformed)),
            ("192.0.2.01", Some(ErrorKind::Malformed)),
            (" 192.0.2.1", Some(ErrorKind::Malformed)),
            ("example.com", Some(ErrorKind::Malformed)),
            ("", Some(ErrorKind::Malformed)),
        ];
        for (value, want) in cases {
            assert_eq!(kind_of(&Identifier::ip(value)), want, "{value:?}");
        }
    }

    #[test]
    fn policy_sorts_and_dedups() {
        let policy = IdentifierPolicy::default();
        let ids = vec![
            Identifier::dns("b.example"),
            Identifier::dns("a.example"),
            Identifier::dns("b.example"),
        ];
        assert_eq!(
            policy.check(&ids).unwrap(),
            vec![Identifier::dns("a.example"), Identifier::dns("b.example")]
        );
    }

    #[test]
    fn policy_refuses_empty_and_too_many() {
        let policy = IdentifierPolicy {
            max_names: 2,
            ..IdentifierPolicy::default()
        };
        assert_eq!(policy.check(&[]).unwrap_err().kind, ErrorKind::Malformed);
        let three: Vec<Identifier> = ["a.example", "b.example", "c.example"]
            .into_iter()
            .map(Identifier::dns)
            .collect();
        let err = policy.check(&three).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        assert!(err.detail.contains("at most 2"), "{}", err.detail);
        // Duplicates do not count against the limit.
        let dups = vec![Identifier::dns("a.example"); 5];
        assert_eq!(policy.check(&dups).unwrap().len(), 1);
    }

    #[test]
    fn policy_gates_ip_identifiers() {
        let ip = [Identifier::ip("192.0.2.1")];
        let err = IdentifierPolicy::default().check(&ip).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
        assert_eq!(err.subproblems.len(), 1);
        assert_eq!(err.subproblems[0].detail, "IP identifiers are not enabled");
        let allowing = IdentifierPolicy {
            allow_ip_identifiers: true,
            ..IdentifierPolicy::default()
        };
        assert_eq!(allowing.check(&ip).unwrap(), ip.to_vec());
        // Enabling IPs does not relax their syntax.
        let err = allowing
            .check(&[Identifier::ip("192.0.2.001")])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
    }

    #[test]
    fn policy_collects_one_subproblem_per_bad_identifier() {
        let ids = [
            Identifier::dns("good.example"),
            Identifier::dns("Bad.example"),
            Identifier::dns("bad..example"),
            Identifier::ip("192.0.2.1"),
        ];
        let err = IdentifierPolicy::default().check(&ids).unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
        // Sorted as the identifiers are: DNS names first.
        let bad: Vec<(&str, ErrorKind)> = err
            .subproblems
            .iter()
            .map(|p| (p.identifier.value.as_str(), p.kind))
            .collect();
        assert_eq!(
            bad,
            vec![
                ("Bad.example", ErrorKind::RejectedIdentifier),
                ("bad..example", ErrorKind::Malformed),
                ("192.0.2.1", ErrorKind::RejectedIdentifier),
            ]
        );
        assert!(err.detail.contains("2 more problems"), "{}", err.detail);
    }

    #[test]
    fn policy_keeps_a_common_kind() {
        let ids = [Identifier::dns("a..example"), Identifier::dns("-b.example")];
        let err = IdentifierPolicy::default().check(&ids).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed);
        assert_eq!(err.subproblems.len(), 2);
    }
}
