//! Issuance: CSR in, linted and recorded certificate out.
//!
//! The order of operations is the CA's central invariant (DESIGN.md): the serial is
//! recorded, then the same certificate is signed with a throwaway key and linted,
//! the linting certificate is stored as the precertificate record, and only then
//! does the issuer key sign, producing a certificate whose TBS must be byte for
//! byte the one that was linted.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::CertStatus;
use basalt_core::CertificateAuthority;
use basalt_core::CertificateRecord;
use basalt_core::CertificateStore;
use basalt_core::Clock;
use basalt_core::CrlPlacement;
use basalt_core::Error;
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::IdentifierType;
use basalt_core::IssueRequest;
use basalt_core::IssuedCertificate;
use basalt_core::Serial;
use basalt_core::SubError;
use basalt_telemetry::metrics::IssuanceKind;
use der::Encode;
use der::asn1::Ia5String;
use der::asn1::ObjectIdentifier;
use rcgen::CertificateParams;
use rcgen::CrlDistributionPoint;
use rcgen::CustomExtension;
use rcgen::DistinguishedName;
use rcgen::DnType;
use rcgen::ExtendedKeyUsagePurpose;
use rcgen::IsCa;
use rcgen::KeyUsagePurpose;
use rcgen::SanType;
use rcgen::SerialNumber;
use rcgen::SubjectPublicKeyInfo;
use ring::rand::SecureRandom;
use ring::rand::SystemRandom;
use time::OffsetDateTime;
use tracing::error;
use tracing::info;
use tracing::warn;
use x509_cert::ext::pkix::AccessDescription;
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::pkix::name::GeneralName;
use x509_parser::certificate::X509Certificate;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::OID_EC_P256;
use x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
use x509_parser::oid_registry::OID_NIST_EC_P384;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::CaConfig;
use crate::Issuer;
use crate::lint;

/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1).
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// certificatePolicies (RFC 5280 §4.2.1.4).
pub(crate) const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];

/// The certificatePolicies value every subscriber certificate carries: one
/// PolicyInformation naming the CA/Browser Forum domain-validated policy,
/// 2.23.140.1.2.1 (Baseline Requirements §7.1.2.7.9 requires it; Let's Encrypt's
/// leaves carry exactly this). DER: SEQUENCE { SEQUENCE { OID 2.23.140.1.2.1 } }.
pub(crate) const DV_CERTIFICATE_POLICIES: &[u8] = &[
    0x30, 0x0a, 0x30, 0x08, 0x06, 0x06, 0x67, 0x81, 0x0c, 0x01, 0x02, 0x01,
];
/// id-ad-ocsp (RFC 5280 §4.2.2.1).
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers (RFC 5280 §4.2.2.1).
const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
/// Serial numbers are 20 octets: the most RFC 5280 §4.1.2.2 allows, about 159
/// random bits (the Baseline Requirements ask for 64).
const SERIAL_LEN: usize = 20;
/// Default subscriber certificate lifetime.
const DEFAULT_VALIDITY: Duration = Duration::from_secs(90 * 86_400);
/// Default backdating of notBefore (Boulder's).
const DEFAULT_BACKDATE: Duration = Duration::from_secs(3600);
/// Default nextUpdate - thisUpdate of OCSP responses.
pub(crate) const DEFAULT_OCSP_VALIDITY: Duration = Duration::from_secs(4 * 86_400);
/// Default nextUpdate - thisUpdate of CRLs.
pub(crate) const DEFAULT_CRL_LIFETIME: Duration = Duration::from_secs(7 * 86_400);

/// The shape of issued certificates.
///
/// By default subjects are empty: like Let's Encrypt's newer profiles, the CA puts
/// no common name in the subject, so the names live only in the (then critical)
/// subjectAltName. A profile with `common_name` copies one name into the subject,
/// and the subjectAltName is then not critical (RFC 5280 §4.2.1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Lifetime, from the (backdated) notBefore; notAfter is notBefore + validity - 1s
    /// because RFC 5280 validity includes both ends.
    pub validity: Duration,
    /// How far notBefore lies before the time of issuance.
    pub backdate: Duration,
    /// The OCSP responder URL for the AIA extension, if any.
    pub ocsp_url: Option<String>,
    /// Whether the subject gets a commonName: the first DNS identifier, in the
    /// sorted order of the subjectAltName, of at most 64 octets (ub-common-name).
    /// Without such a name the subject stays empty, as in Boulder.
    pub common_name: bool,
    /// Whether RSA subject keys get keyEncipherment besides digitalSignature
    /// (for TLS 1.2 RSA key exchange). ECDSA keys never get it.
    pub key_encipherment: bool,
    /// The identifier types the profile issues for; an issue request with any
    /// other is refused ([`ErrorKind::RejectedIdentifier`]).
    pub identifier_types: Vec<IdentifierType>,
    /// The most distinct identifiers one certificate may hold; more is refused
    /// ([`ErrorKind::Malformed`]).
    pub max_names: usize,
}

/// ub-common-name (RFC 5280 Appendix A.1): the longest commonName, in octets.
pub(crate) const MAX_COMMON_NAME_LEN: usize = 64;

/// The most names a certificate may hold under any profile, as Boulder and Let's
/// Encrypt cap it.
pub(crate) const MAX_NAMES: usize = 100;

impl Default for Profile {
    fn default() -> Self {
        Self {
            validity: DEFAULT_VALIDITY,
            backdate: DEFAULT_BACKDATE,
            ocsp_url: None,
            common_name: false,
            key_encipherment: true,
            identifier_types: vec![IdentifierType::Dns],
            max_names: MAX_NAMES,
        }
    }
}

impl Profile {
    /// Checks that the (sorted, deduplicated) `identifiers` fit the profile called
    /// `name`: at most `max_names` of them ([`ErrorKind::Malformed`]), each of an
    /// allowed type ([`ErrorKind::RejectedIdentifier`], one subproblem per refused
    /// identifier). The RA checks the same first; this is the CA's own guard.
    fn check_identifiers(&self, name: &str, identifiers: &[Identifier]) -> Result<(), Error> {
        if identifiers.len() > self.max_names {
            return Err(Error::malformed(format!(
                "profile {name:?} allows at most {} identifiers, the request has {}",
                self.max_names,
                identifiers.len()
            )));
        }
        let refused: Vec<SubError> = identifiers
            .iter()
            .filter(|id| !self.identifier_types.contains(&id.kind))
            .map(|id| SubError {
                identifier: id.clone(),
                kind: ErrorKind::RejectedIdentifier,
                detail: format!(
                    "profile {name:?} does not issue for {} identifiers",
                    identifier_type_name(id.kind)
                ),
            })
            .collect();
        let Some(first) = refused.first() else {
            return Ok(());
        };
        let mut detail = format!(
            "cannot issue for {:?}: {}",
            first.identifier.value, first.detail
        );
        if refused.len() > 1 {
            detail.push_str(&format!(" (and {} more)", refused.len() - 1));
        }
        Err(Error::new(ErrorKind::RejectedIdentifier, detail).with_subproblems(refused))
    }

    /// The subject of a certificate for the (sorted, deduplicated) `identifiers`:
    /// empty, or with `common_name` one commonName, the first DNS identifier short
    /// enough for one.
    fn subject(&self, identifiers: &[Identifier]) -> DistinguishedName {
        let mut subject = DistinguishedName::new();
        if !self.common_name {
            return subject;
        }
        let cn = identifiers
            .iter()
            .find(|id| id.kind == IdentifierType::Dns && id.value.len() <= MAX_COMMON_NAME_LEN);
        if let Some(cn) = cn {
            subject.push(DnType::CommonName, cn.value.as_str());
        }
        subject
    }

    /// notBefore and notAfter for a certificate issued at `now`, honouring the
    /// window the order asked for.
    ///
    /// Without a request, notBefore is `now - backdate` and notAfter is
    /// `notBefore + validity - 1s` (RFC 5280 validity includes both ends). A
    /// requested window is refused ([`ErrorKind::Malformed`]) when notAfter is
    /// not after notBefore, when it is longer than `validity`, or when notBefore
    /// lies more than `backdate` in the past. Times are truncated to whole
    /// seconds, the resolution of X.509 times.
    fn validity_window(
        &self,
        now: OffsetDateTime,
        requested_not_before: Option<OffsetDateTime>,
        requested_not_after: Option<OffsetDateTime>,
    ) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
        let to_time = |d: Duration| {
            time::Duration::try_from(d)
                .map_err(|_| Error::internal("profile duration out of range"))
        };
        let whole_seconds = |t: OffsetDateTime| {
            t.replace_nanosecond(0)
                .map_err(|_| Error::internal("cannot truncate a time to seconds"))
        };
        let validity = to_time(self.validity)?;
        let now = whole_seconds(now)?;
        let earliest = now
            .checked_sub(to_time(self.backdate)?)
            .ok_or_else(|| Error::internal("notBefore out of range"))?;
        let not_before = match requested_not_before {
            Some(requested) => {
                let requested = whole_seconds(requested)?;
                if requested < earliest {
                    return Err(Error::malformed(format!(
                        "notBefore {requested} is more than {}s in the past",
                        self.backdate.as_secs()
                    )));
                }
                requested
            }
            None => earliest,
        };
        let not_after = match requested_not_after {
            Some(requested) => whole_seconds(requested)?,
            None => not_before
                .checked_add(validity)
                .and_then(|t| t.checked_sub(time::Duration::SECOND))
                .ok_or_else(|| Error::malformed("notAfter out of range"))?,
        };
        if not_after <= not_before {
            return Err(Error::malformed(format!(
                "notAfter {not_after} is not after notBefore {not_before}"
            )));
        }
        // Inclusive of both ends: notAfter - notBefore + 1s.
        if not_after - not_before + time::Duration::SECOND > validity {
            return Err(Error::malformed(format!(
                "the validity window {not_before} to {not_after} is longer than the profile's {}s",
                self.validity.as_secs()
            )));
        }
        Ok((not_before, not_after))
    }
}

/// The named profiles a CA issues under, and the one used when an order names none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiles {
    default: String,
    by_name: BTreeMap<String, Profile>,
}

impl Profiles {
    /// A profile set; `default` must be one of `by_name`.
    pub fn new(default: String, by_name: BTreeMap<String, Profile>) -> Result<Self, Error> {
        if !by_name.contains_key(&default) {
            return Err(Error::internal(format!(
                "the default profile {default:?} is not defined"
            )));
        }
        Ok(Self { default, by_name })
    }

    /// One profile, named `name`, which is also the default.
    pub fn single(name: impl Into<String>, profile: Profile) -> Self {
        let name = name.into();
        Self {
            by_name: BTreeMap::from([(name.clone(), profile)]),
            default: name,
        }
    }

    /// The name of the default profile.
    pub fn default_name(&self) -> &str {
        &self.default
    }

    /// Every profile, by name.
    pub fn by_name(&self) -> &BTreeMap<String, Profile> {
        &self.by_name
    }

    /// The profile called `name` with its name, the default one for an empty name;
    /// [`ErrorKind::InvalidProfile`] if there is none.
    pub fn get<'a>(&'a self, name: &'a str) -> Result<(&'a str, &'a Profile), Error> {
        let name = if name.is_empty() { &self.default } else { name };
        self.by_name
            .get_key_value(name)
            .map(|(name, profile)| (name.as_str(), profile))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidProfile,
                    format!("the CA has no profile {name:?}"),
                )
            })
    }
}

impl Default for Profiles {
    /// One default [`Profile`] named [`crate::CLASSIC_PROFILE`].
    fn default() -> Self {
        Self::single(crate::CLASSIC_PROFILE, Profile::default())
    }
}

/// The certificate authority: signs certificates ([`CertificateAuthority`]), OCSP
/// responses and CRLs ([`basalt_core::RevocationSigner`]) with its issuers.
///
/// A certificate from an issuer with a CRL URL base is placed on one of the
/// issuer's CRL shards ([`crate::crl_shard`]) and names that shard's URL as its CRL
/// distribution point; the placement is stored with the precertificate.
///
/// As Boulder does, a certificate is signed by an issuer whose key is of the same
/// type (RSA or ECDSA) as the certificate's key, the first such issuer configured;
/// a CA without an issuer of that type signs with its first issuer, so a private CA
/// with one hierarchy serves every key type.
pub struct Ca {
    pub(crate) issuers: Vec<Issuer>,
    profiles: Profiles,
    storage: Arc<dyn CertificateStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ocsp_validity: Duration,
    pub(crate) crl_shards: NonZeroU32,
    pub(crate) crl_lifetime: Duration,
    crash_trigger: Option<PathBuf>,
}

impl Ca {
    /// A CA issuing from `issuer` under `profiles`, recording in `storage`.
    pub fn new(
        issuer: Issuer,
        profiles: Profiles,
        storage: Arc<dyn CertificateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuers: vec![issuer],
            profiles,
            storage,
            clock,
            ocsp_validity: DEFAULT_OCSP_VALIDITY,
            crl_shards: NonZeroU32::MIN,
            crl_lifetime: DEFAULT_CRL_LIFETIME,
            crash_trigger: None,
        }
    }

    /// The CA described by the `[[issuers]]`, `default_profile`, `[profiles]`,
    /// `[ocsp]` and `[crl]` parts of its config file: validates them and loads the
    /// issuer files, and each issuer's delegated OCSP responder
    /// ([`Issuer::load_ocsp_signer`]), which must be valid now.
    pub fn from_config(
        config: &CaConfig,
        storage: Arc<dyn CertificateStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let now = clock.now();
        let profiles = config.to_profiles(now)?;
        let mut issuers = config.issuers.iter().enumerate().map(|(index, issuer)| {
            let loaded = Issuer::from_config(issuer).map_err(|err| {
                Error::internal(format!(
                    "issuers[{index}] ({}): {}",
                    issuer.cert.display(),
                    err.detail
                ))
            })?;
            let Some(signer) = &issuer.ocsp_signer else {
                return Ok(loaded);
            };
            loaded.load_ocsp_signer(signer, now).map_err(|err| {
                Error::internal(format!(
                    "issuers[{index}].ocsp_signer ({}): {}",
                    signer.cert.display(),
                    err.detail
                ))
            })
        });
        let first = issuers
            .next()
            .ok_or_else(|| Error::internal("invalid CA config: no [[issuers]]"))??;
        let mut ca = Self::new(first, profiles, storage, clock);
        for issuer in issuers {
            ca = ca.with_issuer(issuer?);
        }
        Ok(ca
            .with_ocsp_validity(config.ocsp.validity.0)
            .with_crl(config.crl.shard_count()?, config.crl.lifetime.0))
    }

    /// Arms a crash test: whenever the file `trigger` exists at the moment a
    /// precertificate has been stored, the CA deletes the file and aborts the
    /// process before the issuer key signs, as a power cut would. Only the
    /// resilience tests use it (`BASALT_CA_CRASH_TRIGGER`); nothing in a config
    /// file can set it.
    pub fn with_crash_trigger(mut self, trigger: PathBuf) -> Self {
        self.crash_trigger = Some(trigger);
        self
    }

    /// Aborts the process if the crash trigger file exists (see
    /// [`Ca::with_crash_trigger`]).
    fn crash_if_triggered(&self, serial: &Serial) {
        let Some(trigger) = &self.crash_trigger else {
            return;
        };
        if std::fs::remove_file(trigger).is_ok() {
            error!(%serial, trigger = %trigger.display(), "crash trigger: aborting after the precertificate");
            std::process::abort();
        }
    }

    /// Adds an issuer, after those already there.
    pub fn with_issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Sets nextUpdate - thisUpdate of signed OCSP responses (default 4 days).
    pub fn with_ocsp_validity(mut self, validity: Duration) -> Self {
        self.ocsp_validity = validity;
        self
    }

    /// Sets how many CRL shards each issuer has (default 1) and nextUpdate -
    /// thisUpdate of the CRLs (default 7 days).
    pub fn with_crl(mut self, shards: NonZeroU32, lifetime: Duration) -> Self {
        self.crl_shards = shards;
        self.crl_lifetime = lifetime;
        self
    }

    /// How many CRL shards each issuer has.
    pub fn crl_shards(&self) -> NonZeroU32 {
        self.crl_shards
    }

    /// Where a certificate with `serial` from `issuer` is published once revoked,
    /// and the CRL distribution point it carries: the shard's URL when the issuer
    /// publishes CRLs, else no distribution point and no shard.
    pub fn crl_placement(
        &self,
        issuer: &Issuer,
        serial: &Serial,
    ) -> (CrlPlacement, Option<String>) {
        let shard = crate::crl_shard(serial, self.crl_shards);
        let url = issuer.crl_url(shard);
        let placement = CrlPlacement {
            issuer_key_hash: issuer.key_hash().to_vec(),
            shard: url.is_some().then_some(shard),
        };
        (placement, url)
    }

    /// The first issuer: the one for key types no other issuer matches.
    pub fn issuer(&self) -> &Issuer {
        &self.issuers[0]
    }

    /// Every issuer, in the configured order.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// The issuer that signs a certificate for a key of this type: the first
    /// issuer with a key of the same type, or else the first issuer.
    pub fn issuer_for(&self, subject_is_rsa: bool) -> &Issuer {
        self.issuers
            .iter()
            .find(|issuer| issuer.is_rsa() == subject_is_rsa)
            .unwrap_or(&self.issuers[0])
    }

    /// The profiles.
    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// The certificate parameters for a subscriber certificate.
    fn params(
        issuer: &Issuer,
        profile: &Profile,
        serial: &[u8],
        identifiers: &[Identifier],
        subject_key: &SubjectKey,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        crl_url: Option<&str>,
    ) -> Result<CertificateParams, Error> {
        let mut params = CertificateParams::default();
        // rcgen marks the subjectAltName critical exactly when this is empty
        // (RFC 5280 §4.2.1.6), which lint::san_critical_iff_empty_subject checks.
        params.distinguished_name = profile.subject(identifiers);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.not_before = not_before;
        params.not_after = not_after;
        params.subject_alt_names = subject_alt_names(identifiers)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if subject_key.is_rsa && profile.key_encipherment {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            OID_CERTIFICATE_POLICIES,
            DV_CERTIFICATE_POLICIES.to_vec(),
        )];
        if let Some(aia) = aia_extension(profile.ocsp_url.as_deref(), issuer.issuer_url())? {
            params.custom_extensions.push(aia);
        }
        Ok(params)
    }

    /// Signs `params` with a throwaway key, lints the result and returns its DER.
    fn linting_certificate(
        issuer: &Issuer,
        profile: &Profile,
        params: &CertificateParams,
        subject_key: &SubjectKey,
    ) -> Result<Result<Vec<u8>, Vec<lint::LintError>>, Error> {
        let signer = issuer.linting_signer()?;
        let cert = params
            .signed_by(&subject_key.spki, &signer)
            .map_err(|err| {
                Error::internal(format!("cannot build the linting certificate: {err}"))
            })?;
        let der = cert.der().to_vec();
        let (_, parsed) = X509Certificate::from_der(&der).map_err(|err| {
            Error::internal(format!("cannot parse the linting certificate: {err}"))
        })?;
        let errors = lint::lint_with(&parsed, &lint::Context::for_profile(profile));
        Ok(if errors.is_empty() {
            Ok(der)
        } else {
            Err(errors)
        })
    }

    /// Signs `params` with the issuer key and checks the result against the linted TBS.
    fn sign_certificate(
        issuer: &Issuer,
        params: &CertificateParams,
        subject_key: &SubjectKey,
        linted_der: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let cert = issuer.sign_certificate(params, &subject_key.spki)?;
        let der = cert.der().to_vec();
        let (_, real) = X509Certificate::from_der(&der).map_err(|err| {
            Error::internal(format!("cannot parse the signed certificate: {err}"))
        })?;
        let (_, linted) = X509Certificate::from_der(linted_der).map_err(|err| {
            Error::internal(format!("cannot parse the linting certificate: {err}"))
        })?;
        if real.tbs_certificate.as_ref() != linted.tbs_certificate.as_ref() {
            return Err(Error::internal(
                "the signed certificate differs from the linted certificate",
            ));
        }
        let (_, issuer_cert) = X509Certificate::from_der(issuer.cert_der()).map_err(|err| {
            Error::internal(format!("cannot parse the issuer certificate: {err}"))
        })?;
        real.verify_signature(Some(issuer_cert.public_key()))
            .map_err(|err| {
                Error::internal(format!("the issuer signature does not verify: {err}"))
            })?;
        Ok(der)
    }
}

#[async_trait]
impl CertificateAuthority for Ca {
    async fn issue_certificate(&self, request: IssueRequest) -> Result<IssuedCertificate, Error> {
        let subject_key = parse_csr(&request.csr_der)?;
        let identifiers = sorted_identifiers(&request)?;
        let names_text = request
            .identifiers
            .iter()
            .map(|id| id.value.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let (profile_name, profile) = self.profiles.get(&request.profile)?;
        if let Err(err) = profile.check_identifiers(profile_name, &identifiers) {
            // The RA applies the same profile first: reaching here means the two
            // configs disagree, or a caller bypassed the RA.
            warn!(
                account_id = %request.account_id,
                order_id = %request.order_id,
                names = %names_text,
                profile = %profile_name,
                error = %err.detail,
                "issue request refused by the profile"
            );
            return Err(err);
        }
        let now = self.clock.now();
        let (not_before, not_after) =
            profile.validity_window(now, request.not_before, request.not_after)?;
        let serial_bytes = new_serial()?;
        let serial = Serial::from_bytes(&serial_bytes)?;
        let issuer = self.issuer_for(subject_key.is_rsa);
        let (placement, crl_url) = self.crl_placement(issuer, &serial);
        let params = Self::params(
            issuer,
            profile,
            &serial_bytes,
            &identifiers,
            &subject_key,
            not_before,
            not_after,
            crl_url.as_deref(),
        )?;

        // Step 1: the serial is on record before anything is signed with it.
        self.storage
            .add_serial(&serial, request.account_id, now, not_after)
            .await?;

        // Step 2: the linting certificate, signed by a throwaway key.
        let linted = match Self::linting_certificate(issuer, profile, &params, &subject_key)? {
            Ok(der) => der,
            Err(errors) => {
                let rules = errors.iter().map(|e| e.rule).collect::<Vec<_>>().join(",");
                let details = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                error!(
                    target: "audit",
                    event = "lint_failed",
                    serial = %serial,
                    account_id = %request.account_id,
                    order_id = %request.order_id,
                    names = %names_text,
                    profile = %profile_name,
                    rules = %rules,
                    details = %details,
                    "certificate failed linting, not signed"
                );
                return Err(Error::internal(format!(
                    "certificate failed lints: {details}"
                )));
            }
        };

        // Step 3: the precertificate record, before the issuer key is used.
        self.storage
            .add_precertificate(&serial, &linted, request.account_id, not_before, &placement)
            .await?;
        basalt_telemetry::metrics::issuance(profile_name, IssuanceKind::Precertificate);
        self.crash_if_triggered(&serial);

        // Step 4: the real signature, over exactly the linted TBS.
        let der = match Self::sign_certificate(issuer, &params, &subject_key, &linted) {
            Ok(der) => der,
            Err(err) => {
                error!(
                    target: "audit",
                    event = "signing_failed",
                    serial = %serial,
                    account_id = %request.account_id,
                    order_id = %request.order_id,
                    names = %names_text,
                    profile = %profile_name,
                    error = %err.detail,
                    "issuer signing failed, certificate discarded"
                );
                return Err(err);
            }
        };

        let chain = issuer.chain().to_vec();
        self.storage
            .add_certificate(&CertificateRecord {
                serial: serial.clone(),
                account_id: request.account_id,
                der: der.clone(),
                chain: chain.clone(),
                issued_at: not_before,
                expires_at: not_after,
                status: CertStatus::Good,
                revoked_at: None,
                revocation_reason: None,
            })
            .await?;
        basalt_telemetry::metrics::issuance(profile_name, IssuanceKind::Certificate);
        info!(
            target: "audit",
            event = "certificate_signed",
            serial = %serial,
            account_id = %request.account_id,
            order_id = %request.order_id,
            names = %names_text,
            profile = %profile_name,
            not_before = %not_before,
            not_after = %not_after,
            "certificate issued"
        );
        Ok(IssuedCertificate { serial, der, chain })
    }
}

/// The public key of a CSR whose self-signature verified.
struct SubjectKey {
    spki: SubjectPublicKeyInfo,
    is_rsa: bool,
}

fn bad_csr(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadCsr, detail)
}

/// Parses a CSR, checks its signature and returns its public key: nothing else of
/// the CSR goes into the certificate.
///
/// The CSR is read with x509-parser rather than rcgen's
/// `CertificateSigningRequestParams::from_der`, which refuses CSRs carrying any
/// extension it does not model (OCSP must-staple, for one), although the CA
/// ignores every extension anyway.
fn parse_csr(der: &[u8]) -> Result<SubjectKey, Error> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|err| bad_csr(format!("cannot parse the CSR: {err}")))?;
    if !rest.is_empty() {
        return Err(bad_csr("trailing data after the CSR"));
    }
    csr.verify_signature()
        .map_err(|_| bad_csr("the CSR's signature is invalid"))?;
    let spki = &csr.certification_request_info.subject_pki;
    let bad_key = |detail: String| Error::new(ErrorKind::BadPublicKey, detail);
    let is_rsa = if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if (2048..=8192).contains(&rsa.key_size()) => true,
            Ok(key) => {
                return Err(bad_key(format!(
                    "RSA keys must have 2048 to 8192 bits, not {}",
                    key.key_size()
                )));
            }
            Err(_) => return Err(bad_key("invalid RSA public key".into())),
        }
    } else if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|params| params.as_oid().ok());
        match curve {
            Some(curve) if curve == OID_EC_P256 || curve == OID_NIST_EC_P384 => false,
            _ => return Err(bad_key("ECDSA keys must be on P-256 or P-384".into())),
        }
    } else {
        return Err(bad_key(
            "the CSR's key must be ECDSA (P-256, P-384) or RSA".into(),
        ));
    };
    let spki = SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|err| bad_key(format!("unsupported public key: {err}")))?;
    Ok(SubjectKey { spki, is_rsa })
}

/// The identifiers the RA approved (never the CSR's names), sorted and without
/// duplicates: the order of the subjectAltName entries.
fn sorted_identifiers(request: &IssueRequest) -> Result<Vec<Identifier>, Error> {
    if request.identifiers.is_empty() {
        return Err(Error::malformed("no identifiers to issue for"));
    }
    let mut identifiers = request.identifiers.clone();
    identifiers.sort();
    identifiers.dedup();
    Ok(identifiers)
}

/// How an identifier type is written in configs and on the wire.
pub(crate) fn identifier_type_name(kind: IdentifierType) -> &'static str {
    match kind {
        IdentifierType::Dns => "dns",
        IdentifierType::Ip => "ip",
    }
}

/// The subjectAltName entries for `identifiers`, in their order.
fn subject_alt_names(identifiers: &[Identifier]) -> Result<Vec<SanType>, Error> {
    identifiers
        .iter()
        .map(|id| match id.kind {
            IdentifierType::Dns => dns_san(&id.value),
            IdentifierType::Ip => id
                .value
                .parse::<IpAddr>()
                .map(SanType::IpAddress)
                .map_err(|_| Error::malformed(format!("{:?} is not an IP address", id.value))),
        })
        .collect()
}

/// A dNSName entry; rcgen checks it is IA5 (ASCII).
fn dns_san(name: &str) -> Result<SanType, Error> {
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|_| Error::malformed(format!("{name:?} is not a valid DNS name")))
}

/// 20 random octets forming a positive INTEGER whose DER encoding is exactly 20
/// octets: the first octet has its high bit clear and is not zero.
pub(crate) fn new_serial() -> Result<[u8; SERIAL_LEN], Error> {
    let rng = SystemRandom::new();
    let mut serial = [0u8; SERIAL_LEN];
    // Redraw until the masked first octet is non-zero (1 in 128 draws is redrawn),
    // which keeps every serial uniformly distributed.
    for _ in 0..64 {
        rng.fill(&mut serial)
            .map_err(|_| Error::internal("the system random number generator failed"))?;
        serial[0] &= 0x7f;
        if serial[0] != 0 {
            return Ok(serial);
        }
    }
    Err(Error::internal(
        "the system random number generator looks broken",
    ))
}

/// The authorityInfoAccess extension naming the OCSP responder and where the
/// issuer certificate is (RFC 5280 §4.2.2.1), OCSP first as Let's Encrypt's
/// leaves have it; `None` when there is neither.
fn aia_extension(
    ocsp_url: Option<&str>,
    ca_issuers_url: Option<&str>,
) -> Result<Option<CustomExtension>, Error> {
    let mut descriptions = Vec::new();
    for (method, url) in [(ID_AD_OCSP, ocsp_url), (ID_AD_CA_ISSUERS, ca_issuers_url)] {
        if let Some(url) = url {
            let location = Ia5String::new(url)
                .map_err(|_| Error::internal(format!("AIA URL {url:?} is not ASCII")))?;
            descriptions.push(AccessDescription {
                access_method: method,
                access_location: GeneralName::UniformResourceIdentifier(location),
            });
        }
    }
    if descriptions.is_empty() {
        return Ok(None);
    }
    let der = AuthorityInfoAccessSyntax(descriptions)
        .to_der()
        .map_err(|err| Error::internal(format!("cannot encode the AIA extension: {err}")))?;
    Ok(Some(CustomExtension::from_oid_content(
        OID_AUTHORITY_INFO_ACCESS,
        der,
    )))
}

#[cfg(test)]
mod tests;
