//! dns-01 validation (RFC 8555 §8.4).
//!
//! The subscriber proves control of a name by publishing, at
//! `_acme-challenge.<name>`, a TXT record holding the base64url SHA-256 digest
//! of the key authorization. The record is read through [`Lookup`], which
//! follows CNAMEs, so delegating `_acme-challenge` to another zone works.

use std::sync::Arc;

use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::ValidationRecord;
use basalt_core::ValidationResult;
use ring::digest;

use crate::dns::Lookup;
use crate::http01::is_dns_name;

/// The label the TXT record lives under (RFC 8555 §8.4).
const CHALLENGE_LABEL: &str = "_acme-challenge";

/// How much of a wrong TXT record is echoed back to the subscriber (Boulder's
/// limit): enough to recognise it, not enough to turn the problem document
/// into a copy of whatever the zone holds.
const ECHO_CHARS: usize = 100;

/// What dns-01 validation needs to know.
pub(crate) struct Dns01 {
    lookup: Arc<dyn Lookup>,
}

impl Dns01 {
    pub(crate) fn new(lookup: Arc<dyn Lookup>) -> Self {
        Self { lookup }
    }

    /// Looks up the TXT records at `_acme-challenge.{identifier}` and succeeds
    /// if one of them is the digest of `key_authorization`.
    ///
    /// For a wildcard authorization `identifier` is already the base name
    /// (RFC 8555 §7.1.3), so `*.example.com` is proved at
    /// `_acme-challenge.example.com`. The subscriber's failures (no record, a
    /// wrong one, a DNS error, an IP identifier) are in the result's
    /// `problem`; `Err` is kept for failures of the VA itself.
    pub(crate) async fn validate(
        &self,
        identifier: &Identifier,
        key_authorization: &str,
    ) -> Result<ValidationResult, Error> {
        let name = match identifier.kind {
            IdentifierType::Dns => identifier.value.trim_end_matches('.'),
            // RFC 8738 §7: an IP address has no zone to publish a record in.
            IdentifierType::Ip => {
                return Ok(refused(Error::malformed(
                    "dns-01 validation is only for dns identifiers, not ip addresses",
                )));
            }
        };
        if !is_dns_name(name) {
            return Ok(refused(Error::malformed(format!(
                "{:?} is not a valid dns identifier",
                identifier.value
            ))));
        }

        let record_name = format!("{CHALLENGE_LABEL}.{name}");
        let records = vec![ValidationRecord {
            url: None,
            hostname: identifier.value.clone(),
            port: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            perspectives: Vec::new(),
        }];
        let problem = match self.lookup.lookup_txt(&record_name).await {
            Ok(txts) => check_txts(&record_name, &txts, key_authorization),
            // The subscriber's DNS is at fault, not the VA: report it.
            Err(err) if err.kind == ErrorKind::Dns => Some(err),
            Err(err) => return Err(err),
        };
        Ok(ValidationResult { records, problem })
    }
}

/// A result refused before any lookup, so with nothing seen.
fn refused(problem: Error) -> ValidationResult {
    ValidationResult {
        records: Vec::new(),
        problem: Some(problem),
    }
}

/// `None` when one of `txts` is the expected digest, else the problem.
fn check_txts(record_name: &str, txts: &[String], key_authorization: &str) -> Option<Error> {
    let expected = key_authorization_digest(key_authorization);
    if txts.contains(&expected) {
        return None;
    }
    let Some(first) = txts.first() else {
        return Some(Error::unauthorized(format!(
            "no TXT record found at {record_name}"
        )));
    };
    let shown = match first.char_indices().nth(ECHO_CHARS) {
        Some((at, _)) => format!("{}...", &first[..at]),
        None => first.clone(),
    };
    let seen = match txts.len() {
        1 => "1 record seen".to_owned(),
        n => format!("{n} records seen, none matches"),
    };
    Some(Error::unauthorized(format!(
        "incorrect TXT record {shown:?} found at {record_name} ({seen})"
    )))
}

/// The TXT value RFC 8555 §8.4 asks for: base64url, without padding, of the
/// SHA-256 digest of the key authorization.
fn key_authorization_digest(key_authorization: &str) -> String {
    let digest = digest::digest(&digest::SHA256, key_authorization.as_bytes());
    base64url(digest.as_ref())
}

/// base64url without padding (RFC 4648 §5). Written out because the VA needs
/// only this one encoding, of a 32-byte digest.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, byte)| {
            group | u32::from(*byte) << (16 - 8 * i)
        });
        // Three bytes make four characters; one byte two, two bytes three.
        for i in 0..=chunk.len() {
            let index = (group >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::dns::CaaRecord;

    const KEY_AUTH: &str = "token.thumbprint";
    /// base64url(SHA-256("token.thumbprint")), computed independently.
    const DIGEST: &str = "61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I";

    /// TXT answers by name; names not listed have none. Records every name
    /// asked for.
    #[derive(Default)]
    struct FakeTxt {
        answers: HashMap<String, Result<Vec<String>, Error>>,
        asked: Mutex<Vec<String>>,
    }

    impl FakeTxt {
        fn with(name: &str, answer: Result<Vec<&str>, Error>) -> Arc<Self> {
            let answer = answer.map(|txts| txts.into_iter().map(str::to_owned).collect());
            Arc::new(Self {
                answers: HashMap::from([(name.to_owned(), answer)]),
                asked: Mutex::default(),
            })
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Lookup for FakeTxt {
        async fn lookup_ip(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
            panic!("dns-01 resolved the address of {host}");
        }

        async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, Error> {
            self.asked.lock().unwrap().push(name.to_owned());
            self.answers.get(name).cloned().unwrap_or(Ok(Vec::new()))
        }

        async fn lookup_caa(&self, name: &str) -> Result<Vec<CaaRecord>, Error> {
            panic!("dns-01 looked up CAA at {name}");
        }
    }

    async fn validate(lookup: &Arc<FakeTxt>, identifier: Identifier) -> ValidationResult {
        Dns01::new(lookup.clone())
            .validate(&identifier, KEY_AUTH)
            .await
            .unwrap()
    }

    fn record(hostname: &str) -> Vec<ValidationRecord> {
        vec![ValidationRecord {
            url: None,
            hostname: hostname.into(),
            port: None,
            addresses_resolved: Vec::new(),
            address_used: None,
            perspectives: Vec::new(),
        }]
    }

    #[test]
    fn digest_is_base64url_of_sha256() {
        assert_eq!(key_authorization_digest(KEY_AUTH), DIGEST);
        assert_eq!(
            key_authorization_digest(
                "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
            ),
            "lCM7cZyQXcVHK2nnW3jjAhNT3Fvm18UN-kWZZknKoYM"
        );
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        // RFC 4648 §10, without padding.
        for (input, output) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), output, "{input:?}");
        }
        // The two characters that differ from standard base64.
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[tokio::test]
    async fn matching_record_validates() {
        let lookup = FakeTxt::with("_acme-challenge.example.com", Ok(vec![DIGEST]));
        let result = validate(&lookup, Identifier::dns("example.com")).await;
        assert_eq!(result.problem, None);
        assert_eq!(result.records, record("example.com"));
        assert_eq!(lookup.asked(), ["_acme-challenge.example.com"]);
    }

    #[tokio::test]
    async fn one_match_among_several_is_enough() {
        let lookup = FakeTxt::with(
            "_acme-challenge.example.com",
            Ok(vec!["stale", DIGEST, "other"]),
        );
        let result = validate(&lookup, Identifier::dns("example.com")).await;
        assert_eq!(result.problem, None);
    }

    #[tokio::test]
    async fn no_record_is_unauthorized() {
        let lookup = Arc::new(FakeTxt::default());
        let result = validate(&lookup, Identifier::dns("example.com")).await;
        let problem = result.problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "no TXT record found at _acme-challenge.example.com"
        );
        assert_eq!(result.records, record("example.com"));
    }

    #[tokio::test]
    async fn wrong_record_is_unauthorized_and_echoed() {
        let lookup = FakeTxt::with("_acme-challenge.example.com", Ok(vec!["wrong"]));
        let problem = validate(&lookup, Identifier::dns("example.com"))
            .await
            .problem
            .unwrap();
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            "incorrect TXT record \"wrong\" found at _acme-challenge.example.com (1 record seen)"
        );
    }

    #[tokio::test]
    async fn several_wrong_records_are_counted_and_the_first_truncated() {
        let long = "x".repeat(150);
        let lookup = FakeTxt::with(
            "_acme-challenge.example.com",
            Ok(vec![long.as_str(), "second", "third"]),
        );
        let problem = validate(&lookup, Identifier::dns("example.com"))
            .await
            .problem
            .unwrap();
        assert_eq!(problem.kind, ErrorKind::Unauthorized);
        assert_eq!(
            problem.detail,
            format!(
                "incorrect TXT record \"{}...\" found at _acme-challenge.example.com (3 records seen, none matches)",
                "x".repeat(100)
            )
        );
    }

    #[tokio::test]
    async fn near_misses_do_not_match() {
        for near in [
            format!(" {DIGEST}"),
            format!("{DIGEST}="),
            DIGEST.to_lowercase(),
            KEY_AUTH.to_owned(),
        ] {
            let lookup = FakeTxt::with("_acme-challenge.example.com", Ok(vec![near.as_str()]));
            let problem = validate(&lookup, Identifier::dns("example.com"))
                .await
                .problem
                .unwrap();
            assert_eq!(problem.kind, ErrorKind::Unauthorized, "{near:?}");
        }
    }

    #[tokio::test]
    async fn dns_failure_is_a_dns_problem() {
        let servfail = Error::new(
            ErrorKind::Dns,
            "SERVFAIL looking up TXT for _acme-challenge.example.com",
        );
        let lookup = FakeTxt::with("_acme-challenge.example.com", Err(servfail.clone()));
        let result = validate(&lookup, Identifier::dns("example.com")).await;
        assert_eq!(result.problem, Some(servfail));
        assert_eq!(result.records, record("example.com"));
    }

    #[tokio::test]
    async fn a_resolver_that_cannot_look_up_txt_is_an_internal_error() {
        let lookup = FakeTxt::with(
            "_acme-challenge.example.com",
            Err(Error::internal("resolver broken")),
        );
        let err = Dns01::new(lookup)
            .validate(&Identifier::dns("example.com"), KEY_AUTH)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
    }

    #[tokio::test]
    async fn ip_identifiers_are_refused() {
        let lookup = Arc::new(FakeTxt::default());
        let result = validate(&lookup, Identifier::ip("192.0.2.1")).await;
        let problem = result.problem.unwrap();
        assert_eq!(problem.kind, ErrorKind::Malformed);
        assert!(problem.detail.contains("dns-01"), "{problem}");
        assert!(result.records.is_empty());
        assert!(lookup.asked().is_empty());
    }

    #[tokio::test]
    async fn invalid_names_are_refused_without_a_lookup() {
        let lookup = Arc::new(FakeTxt::default());
        // `*.example.com` included: the RA passes a wildcard's base name.
        for bad in ["", "*.example.com", "exa mple.com", "a..b"] {
            let problem = validate(&lookup, Identifier::dns(bad))
                .await
                .problem
                .unwrap();
            assert_eq!(problem.kind, ErrorKind::Malformed, "{bad:?}");
        }
        assert!(lookup.asked().is_empty());
    }
}
