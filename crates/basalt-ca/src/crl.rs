//! CRL signing (RFC 5280 §5), by the issuer key itself, one shard at a time.
//!
//! An issuer with a `crl_url_base` spreads its revocations over `crl.shards` CRLs,
//! as Boulder does: a certificate is on shard `serial mod shards` ([`crl_shard`]),
//! fixed at issuance, and its CRL distribution point is that shard's URL
//! (`{crl_url_base}{shard}.crl`). The CRL updater gathers the revoked, unexpired
//! certificates of one shard from the SA and has the CA sign them
//! ([`basalt_core::RevocationSigner::generate_crl`]).
//!
//! Every CRL is version 2 with:
//! - thisUpdate from the request and nextUpdate `crl.lifetime` later (at most the
//!   ten days BR §4.9.7 allows);
//! - authorityKeyIdentifier, the issuer's subject key identifier (RFC 5280 §5.2.1);
//! - cRLNumber, thisUpdate in Unix nanoseconds (RFC 5280 §5.2.3): a later CRL of
//!   the same shard always gets a greater number without the CA keeping any state;
//! - a critical issuingDistributionPoint naming the shard's URL, scoped to
//!   end-entity certificates (onlyContainsUserCerts, RFC 5280 §5.2.5), which
//!   BR §7.2.2 requires of a partitioned CRL;
//! - one entry per revoked certificate, by ascending serial, with its
//!   revocationDate and a reasonCode, left out for unspecified (RFC 5280 §5.3.1,
//!   BR §7.2.2).
//!
//! As with certificates, nothing leaves the CA unchecked: the signed CRL is parsed
//! back and must carry what was asked for and verify under the issuer's key.

use std::cmp::Ordering;
use std::num::NonZeroU32;

use basalt_core::CrlRequest;
use basalt_core::Error;
use basalt_core::RevocationReason;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use rcgen::CertificateRevocationListParams;
use rcgen::CrlDistributionPoint;
use rcgen::CrlIssuingDistributionPoint;
use rcgen::CrlScope;
use rcgen::KeyIdMethod;
use rcgen::RevokedCertParams;
use rcgen::SerialNumber;
use time::OffsetDateTime;
use tracing::error;
use tracing::info;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::DistributionPointName;
use x509_parser::extensions::GeneralName;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Version;

use crate::Ca;
use crate::Issuer;
use crate::ocsp::hex;

/// The CRL shard of the certificate with `serial` when its issuer has `shards`
/// shards: the serial, read as an unsigned big-endian integer, modulo `shards`.
pub fn crl_shard(serial: &Serial, shards: NonZeroU32) -> u32 {
    let shards = u64::from(shards.get());
    let shard = serial
        .as_bytes()
        .iter()
        .fold(0u64, |rest, byte| (rest * 256 + u64::from(*byte)) % shards);
    // Below `shards`, itself a u32.
    shard as u32
}

/// What a signed CRL must say: the request as the CA completed it.
struct ExpectedCrl<'a> {
    url: &'a str,
    number: &'a [u8],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &'a [RevokedEntry],
}

impl Ca {
    /// Signs CRL shard `request.shard` of the issuer `request.issuer_key_hash`
    /// names, listing `request.entries`. Refused ([`basalt_core::ErrorKind::Malformed`])
    /// for an issuer the CA does not have or that publishes no CRLs (no
    /// `crl_url_base`), a shard not below `crl.shards`, a serial listed twice or a
    /// thisUpdate before 1970.
    pub(crate) fn sign_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
        let key_hash = hex(&request.issuer_key_hash);
        let issuer = self
            .issuers
            .iter()
            .find(|issuer| issuer.key_hash() == request.issuer_key_hash.as_slice())
            .ok_or_else(|| {
                Error::malformed(format!("the CA has no issuer whose key hash is {key_hash}"))
            })?;
        let shards = self.crl_shards.get();
        if request.shard >= shards {
            return Err(Error::malformed(format!(
                "CRL shard {} is out of range: crl.shards is {shards}, so shards are 0 to {}",
                request.shard,
                shards - 1
            )));
        }
        let url = issuer.crl_url(request.shard).ok_or_else(|| {
            Error::malformed(format!(
                "the issuer whose key hash is {key_hash} has no crl_url_base: the CA signs \
                 no CRLs for it"
            ))
        })?;
        let mut entries = request.entries;
        entries.sort_by(|a, b| serial_order(&a.serial, &b.serial));
        if let Some(pair) = entries
            .windows(2)
            .find(|pair| pair[0].serial == pair[1].serial)
        {
            return Err(Error::malformed(format!(
                "serial {} is listed twice",
                pair[0].serial
            )));
        }
        let this_update = request.this_update;
        let number = crl_number(this_update)?;
        let next_update = time::Duration::try_from(self.crl_lifetime)
            .ok()
            .and_then(|lifetime| this_update.checked_add(lifetime))
            .ok_or_else(|| Error::internal("CRL nextUpdate out of range"))?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&number),
            issuing_distribution_point: Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec![url.clone()],
                },
                scope: Some(CrlScope::UserCertsOnly),
            }),
            revoked_certs: entries.iter().map(revoked_cert).collect(),
            key_identifier_method: KeyIdMethod::PreSpecified(issuer.subject_key_id().to_vec()),
        };
        let number_text = decimal(&number);
        let der = issuer.sign_crl(&params)?.der().to_vec();
        let expected = ExpectedCrl {
            url: &url,
            number: &number,
            this_update,
            next_update,
            entries: &entries,
        };
        if let Err(detail) = check_crl(issuer, &der, &expected) {
            error!(
                issuer_key_hash = %key_hash,
                shard = request.shard,
                number = %number_text,
                error = %detail,
                "the signed CRL failed its checks and was discarded"
            );
            return Err(Error::internal(format!(
                "the signed CRL failed its checks: {detail}"
            )));
        }
        info!(
            target: "audit",
            event = "crl_signed",
            issuer_key_hash = %key_hash,
            shard = request.shard,
            number = %number_text,
            entries = entries.len(),
            this_update = %rfc3339(this_update),
            next_update = %rfc3339(next_update),
            "CRL signed"
        );
        Ok(der)
    }
}

/// Serials in ascending numeric order: [`Serial`] holds no leading zero octets,
/// so a shorter serial is a smaller one.
fn serial_order(a: &Serial, b: &Serial) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The cRLNumber of a CRL issued at `this_update`: its Unix time in nanoseconds,
/// big-endian without leading zero octets (one zero octet for zero).
fn crl_number(this_update: OffsetDateTime) -> Result<Vec<u8>, Error> {
    let nanos = u128::try_from(this_update.unix_timestamp_nanos()).map_err(|_| {
        Error::malformed(format!(
            "CRL thisUpdate {this_update} is before 1970: no CRL number for it"
        ))
    })?;
    let bytes = nanos.to_be_bytes();
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len() - 1);
    Ok(bytes[first..].to_vec())
}

/// A time as audit events write times (RFC 3339).
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// A big-endian unsigned integer of at most 16 octets, in decimal.
fn decimal(number: &[u8]) -> String {
    number
        .iter()
        .fold(0u128, |value, byte| (value << 8) | u128::from(*byte))
        .to_string()
}

/// The CRL entry of `entry`: no reasonCode for unspecified.
fn revoked_cert(entry: &RevokedEntry) -> RevokedCertParams {
    RevokedCertParams {
        serial_number: SerialNumber::from_slice(entry.serial.as_bytes()),
        revocation_time: entry.revoked_at,
        reason_code: reason_code(entry.reason),
        invalidity_date: None,
    }
}

fn reason_code(reason: RevocationReason) -> Option<rcgen::RevocationReason> {
    match reason {
        RevocationReason::Unspecified => None,
        RevocationReason::KeyCompromise => Some(rcgen::RevocationReason::KeyCompromise),
        RevocationReason::AffiliationChanged => Some(rcgen::RevocationReason::AffiliationChanged),
        RevocationReason::Superseded => Some(rcgen::RevocationReason::Superseded),
        RevocationReason::CessationOfOperation => {
            Some(rcgen::RevocationReason::CessationOfOperation)
        }
        RevocationReason::PrivilegeWithdrawn => Some(rcgen::RevocationReason::PrivilegeWithdrawn),
    }
}

/// Parses the signed CRL back and checks it says what was asked for: version 2,
/// the issuer's name, thisUpdate and nextUpdate, the CRL number, the
/// authorityKeyIdentifier, the shard's issuingDistributionPoint, every entry in
/// order with its date and reason, and a signature that verifies under the
/// issuer's key.
fn check_crl(issuer: &Issuer, der: &[u8], expected: &ExpectedCrl<'_>) -> Result<(), String> {
    let (rest, crl) = CertificateRevocationList::from_der(der)
        .map_err(|err| format!("cannot parse it: {err}"))?;
    if !rest.is_empty() {
        return Err("trailing data after the CRL".into());
    }
    if crl.version() != Some(X509Version::V2) {
        return Err(format!("version {:?}, not 2", crl.version()));
    }
    if crl.issuer().as_raw() != issuer.subject_der() {
        return Err("its issuer is not the issuer certificate's subject".into());
    }
    let this_update = crl.last_update().timestamp();
    if this_update != expected.this_update.unix_timestamp() {
        return Err(format!("thisUpdate is {}", crl.last_update()));
    }
    let next_update = crl
        .next_update()
        .ok_or("nextUpdate is missing")?
        .timestamp();
    if next_update != expected.next_update.unix_timestamp() || next_update <= this_update {
        return Err(format!(
            "nextUpdate is {next_update}, not {} after thisUpdate {this_update}",
            expected.next_update.unix_timestamp()
        ));
    }
    let number = crl.crl_number().ok_or("the CRL number is missing")?;
    if number.to_bytes_be() != expected.number {
        return Err(format!("the CRL number is {number}"));
    }
    check_extensions(issuer, &crl, expected.url)?;
    let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
    if revoked.len() != expected.entries.len() {
        return Err(format!(
            "it lists {} certificates, not {}",
            revoked.len(),
            expected.entries.len()
        ));
    }
    for (listed, entry) in revoked.iter().zip(expected.entries) {
        let serial = Serial::from_bytes(&listed.serial().to_bytes_be())
            .map_err(|err| format!("an entry's serial: {}", err.detail))?;
        if serial != entry.serial {
            return Err(format!("it lists {serial} where {} belongs", entry.serial));
        }
        if listed.revocation_date.timestamp() != entry.revoked_at.unix_timestamp() {
            return Err(format!(
                "{serial} has revocationDate {}",
                listed.revocation_date
            ));
        }
        let code = listed.reason_code().map(|(_, code)| code.0);
        let wanted = reason_code(entry.reason).map(|reason| reason as u8);
        if code != wanted {
            return Err(format!("{serial} has reasonCode {code:?}, not {wanted:?}"));
        }
    }
    let (_, issuer_cert) = X509Certificate::from_der(issuer.cert_der())
        .map_err(|err| format!("cannot parse the issuer certificate: {err}"))?;
    crl.verify_signature(issuer_cert.public_key())
        .map_err(|err| format!("the signature does not verify: {err}"))
}

/// The CRL's extensions: authorityKeyIdentifier with the issuer's key
/// identifier, cRLNumber, and a critical issuingDistributionPoint naming `url` for
/// end-entity certificates only; nothing else.
fn check_extensions(
    issuer: &Issuer,
    crl: &CertificateRevocationList<'_>,
    url: &str,
) -> Result<(), String> {
    let mut saw_aki = false;
    let mut saw_idp = false;
    for ext in crl.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                let id = aki.key_identifier.as_ref().map(|id| id.0);
                if id != Some(issuer.subject_key_id()) {
                    return Err(
                        "the authorityKeyIdentifier is not the issuer's key identifier".into(),
                    );
                }
                saw_aki = true;
            }
            ParsedExtension::CRLNumber(_) => {}
            ParsedExtension::IssuingDistributionPoint(idp) => {
                let names = match &idp.distribution_point {
                    Some(DistributionPointName::FullName(names)) => names.as_slice(),
                    _ => &[],
                };
                if !ext.critical || names != [GeneralName::URI(url)] {
                    return Err(format!(
                        "the issuingDistributionPoint is not a critical one naming {url:?}"
                    ));
                }
                if !idp.only_contains_user_certs
                    || idp.only_contains_ca_certs
                    || idp.only_contains_attribute_certs
                    || idp.indirect_crl
                    || idp.only_some_reasons.is_some()
                {
                    return Err(
                        "the issuingDistributionPoint is not scoped to user certificates only"
                            .into(),
                    );
                }
                saw_idp = true;
            }
            other => return Err(format!("unexpected extension {other:?}")),
        }
    }
    if !saw_aki {
        return Err("the authorityKeyIdentifier is missing".into());
    }
    if !saw_idp {
        return Err("the issuingDistributionPoint is missing".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
