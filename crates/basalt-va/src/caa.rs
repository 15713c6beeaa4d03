//! CAA checking (RFC 8659, with the RFC 8657 parameters).
//!
//! Before issuing for a name, the CA reads the Relevant RRset: the CAA
//! record set at the name or, failing that, at the closest parent that has
//! one (RFC 8659 §3). Issuance is allowed when there is no such set, when the
//! set has no property about issuance for this kind of name, or when one of
//! its `issue`/`issuewild` properties names one of our issuer domains and its
//! `accounturi` and `validationmethods` parameters (RFC 8657) admit the
//! request. A lookup that fails refuses issuance: a SERVFAIL may hide records
//! that forbid it.
//!
//! The rules are Boulder's (`va/caa.go`), with two deliberate differences:
//! issuer domains compare case-insensitively, and a wildcard name whose set
//! has neither `issue` nor `issuewild` is allowed, as RFC 8659 §4.3 says
//! (Boulder refuses it).

use std::net::IpAddr;
use std::sync::Arc;

use basalt_core::ChallengeType;
use basalt_core::Error;
use basalt_core::ErrorKind;

use crate::dns::CaaRecord;
use crate::dns::Lookup;

/// Space and horizontal tab, the only whitespace a CAA value may hold
/// (RFC 8659 §4.2, `WSP`).
const WSP: [char; 2] = [' ', '\t'];

/// Checks CAA for issuance by this CA.
pub(crate) struct CaaChecker {
    lookup: Arc<dyn Lookup>,
    /// The CA's own identities, lowercase, without a final dot.
    issuer_domains: Vec<String>,
}

impl CaaChecker {
    /// A checker for the CA known in CAA records as any of `issuer_domains`
    /// (e.g. `basalt.example`). A final dot and the case are ignored; an empty
    /// list or a name that could never appear in a CAA record is refused, so a
    /// typo in the configuration fails at start-up rather than refusing every
    /// name with CAA records.
    pub(crate) fn new<I, S>(lookup: Arc<dyn Lookup>, issuer_domains: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut domains = Vec::new();
        for domain in issuer_domains {
            let domain = domain.as_ref();
            let normalized = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_issuer_domain(&normalized) {
                return Err(Error::internal(format!(
                    "invalid CAA issuer domain {domain:?}: expected a domain name such as \"ca.example\""
                )));
            }
            domains.push(normalized);
        }
        if domains.is_empty() {
            return Err(Error::internal(
                "no CAA issuer domain configured: the CA must know the name CAA records use for it",
            ));
        }
        Ok(Self {
            lookup,
            issuer_domains: domains,
        })
    }

    /// Whether CAA allows this CA to issue for `name` (`*.name` when
    /// `wildcard`) to the account `account_uri`, validated with `method`.
    ///
    /// `Err` with [`ErrorKind::Caa`] when a record forbids it (the detail
    /// names where and why), [`ErrorKind::Dns`] when a lookup failed.
    pub(crate) async fn check(
        &self,
        name: &str,
        wildcard: bool,
        account_uri: &str,
        method: ChallengeType,
    ) -> Result<(), Error> {
        let name = name.trim_end_matches('.');
        // The caller passes the base name of a wildcard; accept the full form
        // too, as Boulder does, rather than query CAA at `*.example.com`.
        let (name, wildcard) = match name.strip_prefix("*.") {
            Some(base) => (base, true),
            None => (name, wildcard),
        };
        let subject = if wildcard {
            format!("*.{name}")
        } else {
            name.to_owned()
        };
        // CAA is defined for domain names only; an IP address has no zone to
        // publish it in.
        if name.parse::<IpAddr>().is_ok() {
            return Ok(());
        }

        match self.decide(name, wildcard, account_uri, method).await {
            Ok(found_at) => {
                tracing::info!(
                    name = %subject,
                    found_at = found_at.as_deref().unwrap_or(""),
                    %method,
                    allowed = true,
                    "caa checked"
                );
                Ok(())
            }
            Err(Refusal::Forbidden { found_at, reason }) => {
                tracing::info!(
                    name = %subject,
                    %found_at,
                    %method,
                    allowed = false,
                    %reason,
                    "caa checked"
                );
                Err(Error::new(
                    ErrorKind::Caa,
                    format!("CAA records at {found_at} forbid issuance for {subject}: {reason}"),
                ))
            }
            // The resolver's detail already names the record type and name.
            Err(Refusal::Lookup(err)) => {
                tracing::info!(
                    name = %subject,
                    %method,
                    allowed = false,
                    error = %err,
                    "caa lookup failed"
                );
                Err(err)
            }
        }
    }

    /// Where the Relevant RRset was found (`None`: nowhere) when issuance is
    /// allowed.
    async fn decide(
        &self,
        name: &str,
        wildcard: bool,
        account_uri: &str,
        method: ChallengeType,
    ) -> Result<Option<String>, Refusal> {
        let labels: Vec<&str> = name.split('.').collect();
        // The name itself, then each parent, down to the TLD; the root is not
        // asked. The resolver follows a CNAME at each name, but the climb goes
        // on from the original name's parent (RFC 8659 §3). A failed lookup
        // stops the climb: the set it hid may be the relevant one.
        for start in 0..labels.len() {
            let candidate = labels[start..].join(".");
            let records = self
                .lookup
                .lookup_caa(&candidate)
                .await
                .map_err(Refusal::Lookup)?;
            if records.is_empty() {
                continue;
            }
            return match self.evaluate(&records, wildcard, account_uri, method) {
                Ok(()) => Ok(Some(candidate)),
                Err(reason) => Err(Refusal::Forbidden {
                    found_at: candidate,
                    reason,
                }),
            };
        }
        Ok(None)
    }

    /// Judges a non-empty Relevant RRset; `Err` holds why it forbids issuance.
    fn evaluate(
        &self,
        records: &[CaaRecord],
        wildcard: bool,
        account_uri: &str,
        method: ChallengeType,
    ) -> Result<(), String> {
        let mut issue = Vec::new();
        let mut issuewild = Vec::new();
        for record in records {
            if record.tag.eq_ignore_ascii_case("issue") {
                issue.push(record.value.as_str());
            } else if record.tag.eq_ignore_ascii_case("issuewild") {
                issuewild.push(record.value.as_str());
            } else if record.tag.eq_ignore_ascii_case("iodef") {
                // Understood (incident reports), never acted on.
            } else if record.critical {
                // RFC 8659 §4.1: a critical property we don't understand
                // forbids issuance, whatever else the set says.
                return Err(format!("unknown critical property {:?}", record.tag));
            }
        }

        // RFC 8659 §4.2-4.3: `issuewild`, when present, governs wildcard names
        // and `issue` then doesn't; `issuewild` never governs other names.
        let (tag, values) = if wildcard && !issuewild.is_empty() {
            ("issuewild", issuewild)
        } else {
            ("issue", issue)
        };
        if values.is_empty() {
            // Only properties that don't concern this issuance (iodef, a
            // non-critical unknown tag, issuewild for a non-wildcard name).
            return Ok(());
        }

        let verdicts: Vec<Verdict<'_>> = values
            .iter()
            .map(|value| self.judge(value, account_uri, method))
            .collect();
        if verdicts.contains(&Verdict::Allows) {
            return Ok(());
        }
        Err(self.refusal(tag, &verdicts, method))
    }

    /// What one `issue`/`issuewild` value says about this request.
    fn judge<'v>(&self, value: &'v str, account_uri: &str, method: ChallengeType) -> Verdict<'v> {
        let Some(parsed) = IssueValue::parse(value) else {
            return Verdict::Malformed;
        };
        let Some(domain) = parsed.domain else {
            return Verdict::Nobody;
        };
        if !self
            .issuer_domains
            .iter()
            .any(|ours| ours.eq_ignore_ascii_case(domain))
        {
            return Verdict::OtherCa;
        }

        // Parameter tags are matched case-insensitively, like property tags:
        // reading `AccountURI` as `accounturi` can only narrow issuance. A
        // parameter given twice is ambiguous, so the record is unusable.
        let param = |tag: &str| -> Result<Option<&'v str>, ()> {
            let mut found = parsed
                .params
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(tag));
            match (found.next(), found.next()) {
                (None, _) => Ok(None),
                (Some((_, value)), None) => Ok(Some(*value)),
                (Some(_), Some(_)) => Err(()),
            }
        };
        let (Ok(accounturi), Ok(validationmethods)) =
            (param("accounturi"), param("validationmethods"))
        else {
            return Verdict::Malformed;
        };

        // RFC 8657 §3: the account URI, compared exactly.
        if accounturi.is_some_and(|uri| uri != account_uri) {
            return Verdict::OtherAccount(domain);
        }
        // RFC 8657 §4: a comma-separated list of ACME method names. A name we
        // don't know is skipped; a list that isn't well-formed is unusable.
        if let Some(list) = validationmethods {
            let methods: Vec<&str> = list.split(',').collect();
            if !methods.iter().all(|m| is_method_label(m)) {
                return Verdict::Malformed;
            }
            if !methods.contains(&method.as_str()) {
                return Verdict::OtherMethod(domain);
            }
        }
        Verdict::Allows
    }

    /// The reason given when no value of `tag` allows the request, picking
    /// the most useful one for the subscriber.
    fn refusal(&self, tag: &str, verdicts: &[Verdict<'_>], method: ChallengeType) -> String {
        for verdict in verdicts {
            if let Verdict::OtherAccount(domain) = verdict {
                return format!(
                    "the {tag} property for {domain} is limited to another ACME account (accounturi)"
                );
            }
        }
        for verdict in verdicts {
            if let Verdict::OtherMethod(domain) = verdict {
                return format!(
                    "the {tag} property for {domain} does not allow validation by {method} (validationmethods)"
                );
            }
        }
        if verdicts.iter().all(|verdict| *verdict == Verdict::Nobody) {
            return format!("its {tag} property names no CA, so no CA may issue");
        }
        let ours = self.issuer_domains.join(" or ");
        let malformed = verdicts
            .iter()
            .filter(|verdict| **verdict == Verdict::Malformed)
            .count();
        match malformed {
            0 => format!("no {tag} property names {ours}"),
            1 => format!("no {tag} property names {ours} (1 malformed {tag} property ignored)"),
            n => format!("no {tag} property names {ours} ({n} malformed {tag} properties ignored)"),
        }
    }
}

/// Why [`CaaChecker::decide`] refused.
enum Refusal {
    /// The Relevant RRset at `found_at` forbids issuance.
    Forbidden { found_at: String, reason: String },
    /// A lookup failed before a Relevant RRset was found.
    Lookup(Error),
}

/// What one `issue`/`issuewild` value says about a request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict<'v> {
    /// Names us and its parameters admit the request.
    Allows,
    /// Names another CA.
    OtherCa,
    /// Names no CA at all (`;`): nobody may issue.
    Nobody,
    /// Does not follow the RFC 8659 grammar, so it can't name us.
    Malformed,
    /// Names us (as written there) for another account.
    OtherAccount(&'v str),
    /// Names us (as written there) for other validation methods.
    OtherMethod(&'v str),
}

/// An `issue`/`issuewild` value (RFC 8659 §4.2):
///
/// ```text
/// issue-value = *WSP [issuer-domain-name *WSP]
///               [";" *WSP [parameters *WSP]]
/// parameters  = (parameter *WSP ";" *WSP parameters) / parameter
/// parameter   = tag *WSP "=" *WSP value
/// ```
#[derive(Debug, PartialEq, Eq)]
struct IssueValue<'v> {
    /// `None` for a value with no issuer domain: no CA may issue.
    domain: Option<&'v str>,
    /// Tag and value of each parameter, in order.
    params: Vec<(&'v str, &'v str)>,
}

impl<'v> IssueValue<'v> {
    /// `None` when `value` does not follow the grammar.
    fn parse(value: &'v str) -> Option<Self> {
        let (head, rest) = match value.split_once(';') {
            Some((head, rest)) => (head, Some(rest)),
            None => (value, None),
        };
        let domain = head.trim_matches(WSP);
        let domain = if domain.is_empty() {
            None
        } else if is_issuer_domain(domain) {
            Some(domain)
        } else {
            return None;
        };

        let mut params = Vec::new();
        // A `;` with nothing after it is allowed (`ca.example;`); a `;` is
        // never allowed to end a list of parameters, nor to stand empty
        // between two of them.
        if let Some(rest) = rest.filter(|rest| !rest.trim_matches(WSP).is_empty()) {
            for parameter in rest.split(';') {
                let (tag, value) = parameter.split_once('=')?;
                let tag = tag.trim_matches(WSP);
                let value = value.trim_matches(WSP);
                if !is_parameter_tag(tag) || !value.bytes().all(is_parameter_value_byte) {
                    return None;
                }
                params.push((tag, value));
            }
        }
        Some(Self { domain, params })
    }
}

/// `issuer-domain-name = label *("." label)`, with
/// `label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))` (RFC 8659 §4.2). No
/// final dot.
fn is_issuer_domain(name: &str) -> bool {
    !name.is_empty() && name.split('.').all(is_ldh_label)
}

/// A parameter tag has the syntax of a domain label (RFC 8659 §4.2).
fn is_parameter_tag(tag: &str) -> bool {
    is_ldh_label(tag)
}

/// `(ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))`.
fn is_ldh_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `value = *(%x21-3A / %x3C-7E)`: printable ASCII but `;` (RFC 8659 §4.2).
fn is_parameter_value_byte(byte: u8) -> bool {
    matches!(byte, 0x21..=0x3a | 0x3c..=0x7e)
}

/// An ACME method label in `validationmethods`: `1*(ALPHA / DIGIT / "-")`
/// (RFC 8657 §4).
fn is_method_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;

    const ACCOUNT: &str = "https://basalt.example/acme/acct/1";
    const US: &str = "basalt.example";

    /// CAA sets by name (the set a resolver returns there, CNAMEs followed);
    /// names not listed have none. Records every name asked for.
    #[derive(Default)]
    struct FakeCaa {
        sets: HashMap<String, Result<Vec<CaaRecord>, Error>>,
        asked: Mutex<Vec<String>>,
    }

    impl FakeCaa {
        fn new(zone: Vec<(&str, Zone)>) -> Arc<Self> {
            let sets = zone
                .into_iter()
                .map(|(name, entry)| {
                    let set = match entry {
                        Zone::Set(records) => Ok(records),
                        Zone::Servfail => Err(Error::new(
                            ErrorKind::Dns,
                            format!("SERVFAIL looking up CAA for {name}"),
                        )),
                    };
                    (name.to_owned(), set)
                })
                .collect();
            Arc::new(Self {
                sets,
                asked: Mutex::default(),
            })
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Lookup for FakeCaa {
        async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
            panic!("the CAA check resolved the address of {host}");
        }

        async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, Error> {
            panic!("the CAA check looked up TXT at {name}");
        }

        async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, Error> {
            self.asked.lock().unwrap().push(name.to_owned());
            self.sets.get(name).cloned().unwrap_or(Ok(Vec::new()))
        }
    }

    enum Zone {
        Set(Vec<CaaRecord>),
        Servfail,
    }

    fn set(records: &[CaaRecord]) -> Zone {
        Zone::Set(records.to_vec())
    }

    fn rr(tag: &str, value: &str) -> CaaRecord {
        CaaRecord {
            critical: false,
            tag: tag.into(),
            value: value.into(),
        }
    }

    fn critical(tag: &str, value: &str) -> CaaRecord {
        CaaRecord {
            critical: true,
            ..rr(tag, value)
        }
    }

    fn issue(value: &str) -> CaaRecord {
        rr("issue", value)
    }

    fn issuewild(value: &str) -> CaaRecord {
        rr("issuewild", value)
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Expect {
        Allow,
        Caa,
        Dns,
    }

    struct Case {
        about: &'static str,
        zone: Vec<(&'static str, Zone)>,
        name: &'static str,
        wildcard: bool,
        method: ChallengeType,
        issuers: &'static [&'static str],
        expect: Expect,
    }

    /// A case checking `www.example.com` (not a wildcard) by http-01 for
    /// [`ACCOUNT`], the CA being [`US`].
    fn case(about: &'static str, zone: Vec<(&'static str, Zone)>, expect: Expect) -> Case {
        Case {
            about,
            zone,
            name: "www.example.com",
            wildcard: false,
            method: ChallengeType::Http01,
            issuers: &[US],
            expect,
        }
    }

    impl Case {
        fn wildcard(self) -> Self {
            Self {
                wildcard: true,
                ..self
            }
        }

        fn name(self, name: &'static str) -> Self {
            Self { name, ..self }
        }

        fn method(self, method: ChallengeType) -> Self {
            Self { method, ..self }
        }

        fn issuers(self, issuers: &'static [&'static str]) -> Self {
            Self { issuers, ..self }
        }
    }

    fn battery() -> Vec<Case> {
        use Expect::*;
        let at = |records: &[CaaRecord]| vec![("www.example.com", set(records))];
        let acct = |value: &str| format!("{US}; accounturi={value}");
        vec![
            // Where the Relevant RRset is.
            case("no CAA anywhere", vec![], Allow),
            case("issue for us", at(&[issue(US)]), Allow),
            case(
                "issue for another CA only",
                at(&[issue("other-ca.example")]),
                Caa,
            ),
            case(
                "one of several issue properties names us",
                at(&[issue("other-ca.example"), issue(US)]),
                Allow,
            ),
            case("issue \";\": no CA may issue", at(&[issue(";")]), Caa),
            case("issue with an empty value", at(&[issue("")]), Caa),
            case(
                "parent's set applies",
                vec![("example.com", set(&[issue("other-ca.example")]))],
                Caa,
            ),
            case(
                "grandparent's set allows",
                vec![("example.com", set(&[issue(US)]))],
                Allow,
            )
            .name("a.b.example.com"),
            case(
                "a set at the TLD is reached",
                vec![("com", set(&[issue("other-ca.example")]))],
                Caa,
            ),
            case(
                "child's set overrides a forbidding parent",
                vec![
                    ("www.example.com", set(&[issue(US)])),
                    ("example.com", set(&[issue("other-ca.example")])),
                ],
                Allow,
            ),
            case(
                "child's set overrides an allowing parent",
                vec![
                    ("www.example.com", set(&[issue("other-ca.example")])),
                    ("example.com", set(&[issue(US)])),
                ],
                Caa,
            ),
            case(
                "a set reached through a CNAME (the resolver returns the target's)",
                vec![("alias.example.com", set(&[issue(US)]))],
                Allow,
            )
            .name("alias.example.com"),
            case(
                "a name with a final dot",
                at(&[issue("other-ca.example")]),
                Caa,
            )
            .name("www.example.com."),
            // issue and issuewild.
            case(
                "issuewild for us, issue for another: wildcard",
                at(&[issuewild(US), issue("other-ca.example")]),
                Allow,
            )
            .wildcard(),
            case(
                "issuewild for us, issue for another: non-wildcard",
                at(&[issuewild(US), issue("other-ca.example")]),
                Caa,
            ),
            case(
                "issuewild for another, issue for us: wildcard",
                at(&[issuewild("other-ca.example"), issue(US)]),
                Caa,
            )
            .wildcard(),
            case(
                "issuewild \";\" with issue for us: wildcard",
                at(&[issuewild(";"), issue(US)]),
                Caa,
            )
            .wildcard(),
            case(
                "only issuewild (another CA): non-wildcard",
                at(&[issuewild("other-ca.example")]),
                Allow,
            ),
            case(
                "only issue for us: wildcard falls back to issue",
                at(&[issue(US)]),
                Allow,
            )
            .wildcard(),
            case(
                "only issue for another: wildcard falls back to issue",
                at(&[issue("other-ca.example")]),
                Caa,
            )
            .wildcard(),
            case(
                "wildcard named with its *. prefix",
                at(&[issuewild(US), issue("other-ca.example")]),
                Allow,
            )
            .name("*.www.example.com"),
            // Other tags.
            case(
                "iodef only",
                at(&[rr("iodef", "mailto:sec@example.com")]),
                Allow,
            ),
            case(
                "iodef only: wildcard",
                at(&[rr("iodef", "mailto:sec@example.com")]),
                Allow,
            )
            .wildcard(),
            case(
                "critical iodef is understood",
                at(&[issue(US), critical("iodef", "mailto:sec@example.com")]),
                Allow,
            ),
            case(
                "critical unknown tag refuses",
                at(&[issue(US), critical("tbs", "unknown")]),
                Caa,
            ),
            case(
                "critical unknown tag refuses even without issue",
                at(&[critical("future", "x")]),
                Caa,
            ),
            case(
                "non-critical unknown tag is ignored",
                at(&[issue(US), rr("tbs", "unknown")]),
                Allow,
            ),
            case(
                "tags compare case-insensitively",
                at(&[rr("ISSUE", "other-ca.example"), rr("Iodef", "x")]),
                Caa,
            ),
            case(
                "IssueWild governs a wildcard",
                at(&[rr("IssueWild", US), rr("Issue", "other-ca.example")]),
                Allow,
            )
            .wildcard(),
            // RFC 8657 accounturi.
            case("accounturi matches", at(&[issue(&acct(ACCOUNT))]), Allow),
            case(
                "accounturi names another account",
                at(&[issue(&acct("https://basalt.example/acme/acct/2"))]),
                Caa,
            ),
            case(
                "accounturi is compared exactly, not as a prefix",
                at(&[issue(&acct("https://basalt.example/acme/acct/12"))]),
                Caa,
            ),
            case(
                "accounturi given twice is unusable",
                at(&[issue(&format!(
                    "{US}; accounturi={ACCOUNT}; accounturi={ACCOUNT}"
                ))]),
                Caa,
            ),
            case(
                "parameter tags compare case-insensitively",
                at(&[issue(&format!("{US}; AccountURI=https://other.example/1"))]),
                Caa,
            ),
            case(
                "a record for another account next to one for ours",
                at(&[
                    issue(&acct("https://basalt.example/acme/acct/2")),
                    issue(&acct(ACCOUNT)),
                ]),
                Allow,
            ),
            // RFC 8657 validationmethods.
            case(
                "validationmethods includes the method",
                at(&[issue(&format!("{US}; validationmethods=dns-01,http-01"))]),
                Allow,
            ),
            case(
                "validationmethods excludes the method",
                at(&[issue(&format!("{US}; validationmethods=dns-01"))]),
                Caa,
            ),
            case(
                "validationmethods allows dns-01",
                at(&[issue(&format!("{US}; validationmethods=dns-01"))]),
                Allow,
            )
            .method(ChallengeType::Dns01),
            case(
                "validationmethods allows tls-alpn-01",
                at(&[issue(&format!("{US}; validationmethods=tls-alpn-01"))]),
                Allow,
            )
            .method(ChallengeType::TlsAlpn01),
            case(
                "validationmethods skips unknown methods",
                at(&[issue(&format!("{US}; validationmethods=future-02,http-01"))]),
                Allow,
            ),
            case(
                "validationmethods with an empty element is unusable",
                at(&[issue(&format!("{US}; validationmethods=http-01,,dns-01"))]),
                Caa,
            ),
            case(
                "validationmethods is case-sensitive",
                at(&[issue(&format!("{US}; validationmethods=HTTP-01"))]),
                Caa,
            ),
            case(
                "both parameters match",
                at(&[issue(&format!(
                    "{US}; accounturi={ACCOUNT}; validationmethods=http-01"
                ))]),
                Allow,
            ),
            case(
                "both parameters, method excluded",
                at(&[issue(&format!(
                    "{US}; accounturi={ACCOUNT}; validationmethods=dns-01"
                ))]),
                Caa,
            ),
            case(
                "both parameters, account excluded",
                at(&[issue(&format!(
                    "{US}; accounturi=https://other.example/1; validationmethods=http-01"
                ))]),
                Caa,
            ),
            // Syntax.
            case(
                "issuer domain in upper case",
                at(&[issue("BASALT.example")]),
                Allow,
            ),
            case(
                "whitespace around the domain and parameters",
                at(&[issue(&format!(" {US} ; accounturi = {ACCOUNT} "))]),
                Allow,
            ),
            case(
                "tabs are whitespace too",
                at(&[issue(&format!("\t{US}\t;\taccounturi={ACCOUNT}"))]),
                Allow,
            ),
            case(
                "a lone trailing semicolon",
                at(&[issue(&format!("{US};"))]),
                Allow,
            ),
            case(
                "unknown parameters are ignored",
                at(&[issue(&format!("{US}; policy=ev; x-y=1=2"))]),
                Allow,
            ),
            case(
                "a parameter without a value part is malformed",
                at(&[issue(&format!("{US}; accounturi"))]),
                Caa,
            ),
            case(
                "a semicolon ending the parameters is malformed",
                at(&[issue(&format!("{US}; accounturi={ACCOUNT};"))]),
                Caa,
            ),
            case(
                "a bad domain is malformed",
                at(&[issue("basalt..example")]),
                Caa,
            ),
            case(
                "a domain with a leading hyphen is malformed",
                at(&[issue("-basalt.example")]),
                Caa,
            ),
            case(
                "a record's final dot is outside the grammar",
                at(&[issue("basalt.example.")]),
                Caa,
            ),
            case(
                "a malformed record does not hide a good one",
                at(&[issue(&format!("{US}; =x")), issue(US)]),
                Allow,
            ),
            // Our identities.
            case(
                "several issuer domains configured",
                at(&[issue("acme.basalt.test")]),
                Allow,
            )
            .issuers(&[US, "acme.basalt.test"]),
            case(
                "configured issuer domain with a final dot and capitals",
                at(&[issue(US)]),
                Allow,
            )
            .issuers(&["Basalt.Example."]),
            // Lookup failures.
            case(
                "SERVFAIL at the name",
                vec![("www.example.com", Zone::Servfail)],
                Dns,
            ),
            case(
                "SERVFAIL at the parent after an empty child",
                vec![("example.com", Zone::Servfail)],
                Dns,
            ),
            case(
                "SERVFAIL above the Relevant RRset is never asked",
                vec![
                    ("www.example.com", set(&[issue(US)])),
                    ("example.com", Zone::Servfail),
                ],
                Allow,
            ),
        ]
    }

    async fn run(case: Case) -> (Result<(), Error>, Vec<String>) {
        let lookup = FakeCaa::new(case.zone);
        let checker = CaaChecker::new(lookup.clone(), case.issuers).unwrap();
        let result = checker
            .check(case.name, case.wildcard, ACCOUNT, case.method)
            .await;
        (result, lookup.asked())
    }

    #[tokio::test]
    async fn battery_of_caa_cases() {
        let cases = battery();
        assert!(cases.len() >= 24);
        let mut failures = Vec::new();
        for case in cases {
            let about = case.about;
            let expect = case.expect;
            let (result, _) = run(case).await;
            let got = match &result {
                Ok(()) => Expect::Allow,
                Err(err) if err.kind == ErrorKind::Caa => Expect::Caa,
                Err(err) if err.kind == ErrorKind::Dns => Expect::Dns,
                Err(err) => panic!("{about}: unexpected error {err:?}"),
            };
            if got != expect {
                failures.push(format!("{about}: expected {expect:?}, got {result:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn climbs_to_the_first_set_and_stops() {
        let zone = vec![("example.com", set(&[issue(US)]))];
        let (result, asked) = run(case("", zone, Expect::Allow).name("a.b.example.com")).await;
        assert_eq!(result, Ok(()));
        assert_eq!(asked, ["a.b.example.com", "b.example.com", "example.com"]);

        let (result, asked) = run(case("", vec![], Expect::Allow)).await;
        assert_eq!(result, Ok(()));
        assert_eq!(asked, ["www.example.com", "example.com", "com"]);
    }

    #[tokio::test]
    async fn refusal_names_the_set_and_the_reason() {
        let detail = |zone, wildcard| async move {
            let mut case = case("", zone, Expect::Caa);
            case.wildcard = wildcard;
            run(case).await.0.unwrap_err().detail
        };
        assert_eq!(
            detail(
                vec![("example.com", set(&[issue("other-ca.example")]))],
                false
            )
            .await,
            "CAA records at example.com forbid issuance for www.example.com: \
             no issue property names basalt.example"
        );
        assert_eq!(
            detail(
                vec![(
                    "www.example.com",
                    set(&[
                        issuewild("other-ca.example"),
                        issuewild(&format!("{US}; =x"))
                    ])
                )],
                true
            )
            .await,
            "CAA records at www.example.com forbid issuance for *.www.example.com: \
             no issuewild property names basalt.example (1 malformed issuewild property ignored)"
        );
        assert_eq!(
            detail(vec![("www.example.com", set(&[issue(";")]))], false).await,
            "CAA records at www.example.com forbid issuance for www.example.com: \
             its issue property names no CA, so no CA may issue"
        );
        assert_eq!(
            detail(
                vec![("www.example.com", set(&[issue(US), critical("tbs", "x")]))],
                false
            )
            .await,
            "CAA records at www.example.com forbid issuance for www.example.com: \
             unknown critical property \"tbs\""
        );
        assert_eq!(
            detail(
                vec![(
                    "www.example.com",
                    set(&[issue(
                        "BASALT.example; accounturi=https://basalt.example/acme/acct/2"
                    )])
                )],
                false
            )
            .await,
            "CAA records at www.example.com forbid issuance for www.example.com: \
             the issue property for BASALT.example is limited to another ACME account (accounturi)"
        );
        assert_eq!(
            detail(
                vec![(
                    "www.example.com",
                    set(&[issue(&format!("{US}; validationmethods=dns-01"))])
                )],
                false
            )
            .await,
            "CAA records at www.example.com forbid issuance for www.example.com: \
             the issue property for basalt.example does not allow validation by http-01 (validationmethods)"
        );
    }

    #[tokio::test]
    async fn lookup_failure_keeps_the_resolver_detail() {
        let zone = vec![("example.com", Zone::Servfail)];
        let (result, asked) = run(case("", zone, Expect::Dns)).await;
        let err = result.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dns);
        assert_eq!(err.detail, "SERVFAIL looking up CAA for example.com");
        assert_eq!(asked, ["www.example.com", "example.com"]);
    }

    #[tokio::test]
    async fn ip_addresses_have_no_caa() {
        for ip in ["192.0.2.1", "2001:db8::1"] {
            let (result, asked) = run(case("", vec![], Expect::Allow).name(ip)).await;
            assert_eq!(result, Ok(()));
            assert!(asked.is_empty(), "{ip}: {asked:?}");
        }
    }

    #[test]
    fn issuer_domains_are_checked_when_built() {
        let lookup: Arc<dyn Lookup> = FakeCaa::new(vec![]);
        let none: [&str; 0] = [];
        assert!(CaaChecker::new(lookup.clone(), none).is_err());
        for bad in [
            "",
            ".",
            "basalt example",
            "-basalt.example",
            "basalt..example",
        ] {
            let err = CaaChecker::new(lookup.clone(), [bad]).err().unwrap();
            assert_eq!(err.kind, ErrorKind::Internal, "{bad:?}");
        }
        let checker = CaaChecker::new(lookup, [" Basalt.Example. ", "ca.test"]).unwrap();
        assert_eq!(checker.issuer_domains, ["basalt.example", "ca.test"]);
    }

    #[test]
    fn issue_values_parse_per_rfc_8659() {
        let parsed = |value| IssueValue::parse(value);
        assert_eq!(
            parsed("ca.example; a=1;b-c = x=y"),
            Some(IssueValue {
                domain: Some("ca.example"),
                params: vec![("a", "1"), ("b-c", "x=y")],
            })
        );
        assert_eq!(
            parsed(";"),
            Some(IssueValue {
                domain: None,
                params: vec![],
            })
        );
        assert_eq!(
            parsed("; accounturi=x"),
            Some(IssueValue {
                domain: None,
                params: vec![("accounturi", "x")],
            })
        );
        assert_eq!(
            parsed("ca.example; key="),
            Some(IssueValue {
                domain: Some("ca.example"),
                params: vec![("key", "")],
            })
        );
        for bad in [
            "ca.example; ; a=1",
            "ca.example; a=1;",
            "ca.example; -a=1",
            "ca.example; a b=1",
            "ca.example; a=1 2",
            "ca.example; a=\u{e9}",
            "ca example",
            "ca_example.com",
        ] {
            assert_eq!(parsed(bad), None, "{bad:?}");
        }
    }
}
