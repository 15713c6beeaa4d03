//! The CA service's configuration file (`basalt ca --config ca.toml`).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use basalt_config::ConfigDuration;
use basalt_config::GrpcClientConfig;
use basalt_config::GrpcServerConfig;
use basalt_config::TlsConfig;
use basalt_core::Error;
use basalt_core::IdentifierType;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::KeySource;
use crate::Pkcs11Config;
use crate::Profile;
use crate::Profiles;
use crate::issuance::MAX_NAMES;
use crate::issuance::identifier_type_name;

/// The name of the profile a config without `[profiles]` gets, and the default
/// `default_profile`.
pub const CLASSIC_PROFILE: &str = "classic";

/// Everything `basalt ca` reads from its TOML file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaConfig {
    /// Where the CA's gRPC server listens and who may call it (the RA and the
    /// OCSP/CRL updater only).
    pub grpc: GrpcServerConfig,
    /// The CA's own mTLS certificate, key and the internal CA.
    pub tls: TlsConfig,
    /// `[telemetry]`: metrics and health checks on a debug listener, and trace
    /// export (all off unless set).
    #[serde(default)]
    pub telemetry: basalt_config::TelemetryConfig,
    /// How to reach the storage authority.
    pub sa: GrpcClientConfig,
    /// The issuers that sign subscriber certificates (`[[issuers]]`), at least
    /// one. A CSR gets the first issuer whose key is of the same type (RSA or
    /// ECDSA) as the CSR's key, or else the first issuer.
    pub issuers: Vec<IssuerConfig>,
    /// The profile used when an order names none.
    #[serde(default = "CaConfig::default_profile_name")]
    pub default_profile: String,
    /// The certificate profiles the CA issues under, by name
    /// (`[profiles.<name>]`). Without the table, one profile named
    /// [`CLASSIC_PROFILE`] with the [`ProfileConfig`] defaults.
    #[serde(default = "CaConfig::default_profiles")]
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// How OCSP responses are signed.
    #[serde(default)]
    pub ocsp: OcspSigningConfig,
    /// How CRLs are sharded and how long they are valid (`[crl]`).
    #[serde(default)]
    pub crl: CrlConfig,
}

impl CaConfig {
    fn default_profile_name() -> String {
        CLASSIC_PROFILE.to_owned()
    }

    fn default_profiles() -> BTreeMap<String, ProfileConfig> {
        BTreeMap::from([(CLASSIC_PROFILE.to_owned(), ProfileConfig::default())])
    }

    /// Checks what serde cannot: `default_profile` names a profile, profile names
    /// are non-empty tokens (`A-Z a-z 0-9 . _ -`), every validity is above zero and
    /// at most what the Baseline Requirements allow today, the URLs are ASCII
    /// `http://` URLs, each issuer's `crl_url_base` ends with '/' and is its own,
    /// `identifier_types` is a non-empty list without repeats, `max_names` is 1 to
    /// 100, each issuer and `ocsp_signer` names one key and `[crl]` is within its
    /// bounds ([`CrlConfig`]). The message names the field. `now` dates the Baseline Requirements' validity limit.
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), String> {
        if self.issuers.is_empty() {
            return Err("issuers must list at least one [[issuers]] table".into());
        }
        for (index, issuer) in self.issuers.iter().enumerate() {
            issuer.validate(&format!("issuers[{index}]"))?;
            // Two issuers publishing at the same URLs would overwrite each other's
            // CRLs, and a relying party could not tell which issuer's it fetched.
            let shared = self.issuers[..index].iter().position(|earlier| {
                earlier.crl_url_base.is_some() && earlier.crl_url_base == issuer.crl_url_base
            });
            if let Some(earlier) = shared {
                return Err(format!(
                    "issuers[{index}].crl_url_base is also issuers[{earlier}]'s: each issuer \
                     needs CRL URLs of its own"
                ));
            }
        }
        self.crl.validate()?;
        if !self.profiles.contains_key(&self.default_profile) {
            return Err(format!(
                "default_profile {:?} is not one of the [profiles]",
                self.default_profile
            ));
        }
        for (name, profile) in &self.profiles {
            if !is_profile_name(name) {
                return Err(format!(
                    "profile name {name:?} must be non-empty and use only A-Z, a-z, 0-9, '.', '_' and '-'"
                ));
            }
            profile.validate(name, crate::lint::br_max_validity(now))?;
        }
        Ok(())
    }

    /// The validated profile set the CA issues with, as of `now`.
    pub fn to_profiles(&self, now: OffsetDateTime) -> Result<Profiles, Error> {
        self.validate(now)
            .map_err(|err| Error::internal(format!("invalid CA config: {err}")))?;
        let by_name = self
            .profiles
            .iter()
            .map(|(name, profile)| (name.clone(), profile.to_profile()))
            .collect();
        Profiles::new(self.default_profile.clone(), by_name)
    }
}

/// Whether `name` can name a profile: what the ACME directory and logs show.
fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One issuer (`[[issuers]]`): its certificate, where its key is, and what goes
/// with the certificates it signs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer certificate, PEM.
    pub cert: PathBuf,
    /// Its private key as a PEM PKCS#8 file (ECDSA P-256/P-384 or RSA); or
    /// else `pkcs11`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Its private key as an object in a PKCS#11 token; or else `key`.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
    /// Further certificates to send after the issuer certificate, PEM, nearest
    /// first. The root is usually left out.
    #[serde(default)]
    pub chain: Vec<PathBuf>,
    /// Where the issuer certificate can be downloaded (DER over HTTP): the
    /// caIssuers URL of the authorityInfoAccess of every certificate it signs.
    #[serde(default)]
    pub issuer_url: Option<String>,
    /// Where the issuer's CRL shards are published: an ASCII `http://` URL ending
    /// with '/', without query or fragment. A certificate on shard `n` gets the CRL
    /// distribution point `{crl_url_base}{n}.crl`, and that CRL's
    /// issuingDistributionPoint names the same URL. Without it the issuer's
    /// certificates carry no CRL distribution point and the CA signs no CRLs for
    /// it. The issuer certificate must allow cRLSign.
    #[serde(default)]
    pub crl_url_base: Option<String>,
    /// A delegated OCSP responder (RFC 6960 §4.2.2.2) that signs this issuer's
    /// OCSP responses instead of the issuer key (`ocsp_signer = { cert, key }` or
    /// `{ cert, pkcs11 }`), made by `basalt ceremony ocsp-signer`. Without it the
    /// issuer key signs them.
    #[serde(default)]
    pub ocsp_signer: Option<DelegatedOcspSignerConfig>,
}

/// A delegated OCSP responder of one issuer (`ocsp_signer` of an `[[issuers]]`
/// table): its certificate, which the issuer signed with id-kp-OCSPSigning, and
/// its key.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DelegatedOcspSignerConfig {
    /// The delegated responder's certificate, PEM (the first certificate of the
    /// file); every response it signs carries it.
    pub cert: PathBuf,
    /// Its private key as a PEM PKCS#8 file (ECDSA P-256/P-384 or RSA); or else
    /// `pkcs11`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Its private key as an object in a PKCS#11 token; or else `key`.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
}

impl DelegatedOcspSignerConfig {
    /// Where the key is; exactly one of `key` and `pkcs11` must be set. `block`
    /// names the table in the error (`issuers[0].ocsp_signer`).
    pub fn key_source(&self, block: &str) -> Result<KeySource, String> {
        KeySource::from_fields(block, self.key.as_ref(), self.pkcs11.as_ref())
    }
}

impl IssuerConfig {
    /// Where the key is; exactly one of `key` and `pkcs11` must be set.
    pub fn key_source(&self, block: &str) -> Result<KeySource, String> {
        KeySource::from_fields(block, self.key.as_ref(), self.pkcs11.as_ref())
    }

    fn validate(&self, block: &str) -> Result<(), String> {
        self.key_source(block)?;
        if let Some(signer) = &self.ocsp_signer {
            signer.key_source(&format!("{block}.ocsp_signer"))?;
        }
        if self
            .issuer_url
            .as_ref()
            .is_some_and(|url| !is_http_url(url))
        {
            return Err(format!(
                "{block}.issuer_url must be an ASCII http:// URL (RFC 5280 §4.2.2.1)"
            ));
        }
        if let Some(base) = &self.crl_url_base {
            if !is_http_url(base) {
                return Err(format!(
                    "{block}.crl_url_base must be an ASCII http:// URL (BR 7.1.2.11.2)"
                ));
            }
            if base.contains(['?', '#']) {
                return Err(format!(
                    "{block}.crl_url_base must not have a query or fragment: \
                     the shard's file name is appended to it"
                ));
            }
            if !base.ends_with('/') {
                return Err(format!("{block}.crl_url_base must end with '/'"));
            }
        }
        Ok(())
    }
}

/// Whether `url` is an ASCII `http://` URL, as the AIA and CRL DP URLs of
/// publicly-trusted certificates must be.
fn is_http_url(url: &str) -> bool {
    url.is_ascii() && url.len() > "http://".len() && url.starts_with("http://")
}

/// One certificate profile ([`Profile`]) as written in the config file
/// (`[profiles.<name>]`). Leaving `ocsp_url` out omits the AIA extension. The CRL
/// distribution point comes from the issuer (`crl_url_base`), not the profile.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// How long a certificate is valid, counted from its (backdated) notBefore.
    #[serde(default = "ProfileConfig::default_validity")]
    pub validity: ConfigDuration,
    /// How far notBefore is set in the past, to absorb client clock skew.
    #[serde(default = "ProfileConfig::default_backdate")]
    pub backdate: ConfigDuration,
    /// The OCSP responder URL to put in the AIA extension, if any.
    #[serde(default)]
    pub ocsp_url: Option<String>,
    /// Whether the subject gets a commonName (the first DNS name of at most 64
    /// octets); by default the subject is empty.
    #[serde(default)]
    pub common_name: bool,
    /// Whether RSA subject keys also get keyEncipherment (default `true`).
    #[serde(default = "ProfileConfig::default_key_encipherment")]
    pub key_encipherment: bool,
    /// The identifier types the profile issues for, `"dns"` and/or `"ip"`
    /// (default `["dns"]`); the RA's profile of the same name should allow the
    /// same.
    #[serde(default = "ProfileConfig::default_identifier_types")]
    pub identifier_types: Vec<IdentifierType>,
    /// The most distinct names one certificate may hold, 1 to 100 (default 100).
    #[serde(default = "ProfileConfig::default_max_names")]
    pub max_names: usize,
}

impl ProfileConfig {
    fn default_validity() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(90 * 86_400))
    }

    fn default_backdate() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(3600))
    }

    fn default_key_encipherment() -> bool {
        true
    }

    fn default_identifier_types() -> Vec<IdentifierType> {
        vec![IdentifierType::Dns]
    }

    fn default_max_names() -> usize {
        MAX_NAMES
    }

    /// Checks the fields of `[profiles.<name>]` serde cannot; `max_validity` is
    /// the longest validity the Baseline Requirements allow today.
    fn validate(&self, name: &str, max_validity: Duration) -> Result<(), String> {
        let validity = self.validity.0;
        // The linter would refuse every certificate of a longer profile.
        if validity.is_zero() || validity > max_validity {
            return Err(format!(
                "profiles.{name}.validity must be above zero and at most the {} days \
                 the Baseline Requirements allow today",
                max_validity.as_secs() / 86_400
            ));
        }
        if self.ocsp_url.as_ref().is_some_and(|url| !is_http_url(url)) {
            return Err(format!(
                "profiles.{name}.ocsp_url must be an ASCII http:// URL"
            ));
        }
        if self.identifier_types.is_empty() {
            return Err(format!(
                "profiles.{name}.identifier_types must list at least one of \"dns\" and \"ip\""
            ));
        }
        for (index, kind) in self.identifier_types.iter().enumerate() {
            if self.identifier_types[..index].contains(kind) {
                return Err(format!(
                    "profiles.{name}.identifier_types lists {:?} more than once",
                    identifier_type_name(*kind)
                ));
            }
        }
        if !(1..=MAX_NAMES).contains(&self.max_names) {
            return Err(format!(
                "profiles.{name}.max_names must be 1 to {MAX_NAMES}"
            ));
        }
        Ok(())
    }

    /// The profile as the CA issues with it.
    pub fn to_profile(&self) -> Profile {
        Profile {
            validity: self.validity.0,
            backdate: self.backdate.0,
            ocsp_url: self.ocsp_url.clone(),
            common_name: self.common_name,
            key_encipherment: self.key_encipherment,
            identifier_types: self.identifier_types.clone(),
            max_names: self.max_names,
        }
    }
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            validity: Self::default_validity(),
            backdate: Self::default_backdate(),
            ocsp_url: None,
            common_name: false,
            key_encipherment: Self::default_key_encipherment(),
            identifier_types: Self::default_identifier_types(),
            max_names: Self::default_max_names(),
        }
    }
}

/// How OCSP responses are signed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OcspSigningConfig {
    /// nextUpdate - thisUpdate of every response.
    #[serde(default = "OcspSigningConfig::default_validity")]
    pub validity: ConfigDuration,
}

impl OcspSigningConfig {
    fn default_validity() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(4 * 86_400))
    }
}

impl Default for OcspSigningConfig {
    fn default() -> Self {
        Self {
            validity: Self::default_validity(),
        }
    }
}

/// The most CRL shards per issuer `crl.shards` allows. Every shard of every issuer
/// is gathered, signed and published on each CRL update, so a useful count stays
/// in the hundreds; a thousand leaves room without letting a typo ask the updater
/// for millions of CRLs each round.
pub const MAX_CRL_SHARDS: u32 = 1000;

/// The longest `crl.lifetime`: the Baseline Requirements (§4.9.7) put the
/// nextUpdate of a CRL covering subscriber certificates at most ten days after its
/// thisUpdate.
pub const MAX_CRL_LIFETIME: Duration = Duration::from_secs(10 * 86_400);

/// How CRLs are sharded and signed (`[crl]`), for the issuers with a
/// `crl_url_base`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CrlConfig {
    /// How many CRLs each issuer's revocations are spread over, 1 to
    /// [`MAX_CRL_SHARDS`] (default 1). A certificate is on shard `serial mod
    /// shards`, its serial read as an unsigned big-endian integer. The shard is
    /// fixed at issuance: raising the count later leaves the certificates already
    /// issued on their shards, but lowering it stops the CA signing the higher
    /// shards that unexpired certificates still name.
    #[serde(default = "CrlConfig::default_shards")]
    pub shards: u32,
    /// nextUpdate - thisUpdate of every CRL: at least one second and at most
    /// the ten days of [`MAX_CRL_LIFETIME`] (default 7 days).
    #[serde(default = "CrlConfig::default_lifetime")]
    pub lifetime: ConfigDuration,
}

impl CrlConfig {
    fn default_shards() -> u32 {
        1
    }

    fn default_lifetime() -> ConfigDuration {
        ConfigDuration(Duration::from_secs(7 * 86_400))
    }

    /// Checks `shards` and `lifetime` against their bounds.
    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_CRL_SHARDS).contains(&self.shards) {
            return Err(format!("crl.shards must be 1 to {MAX_CRL_SHARDS}"));
        }
        // CRL times are whole seconds: a shorter lifetime would make nextUpdate
        // equal thisUpdate.
        let lifetime = self.lifetime.0;
        if lifetime < Duration::from_secs(1) || lifetime > MAX_CRL_LIFETIME {
            return Err(format!(
                "crl.lifetime must be at least 1s and at most the {} days the Baseline \
                 Requirements allow (§4.9.7)",
                MAX_CRL_LIFETIME.as_secs() / 86_400
            ));
        }
        Ok(())
    }

    /// The shard count, once validated.
    pub(crate) fn shard_count(&self) -> Result<NonZeroU32, Error> {
        self.validate()
            .map_err(|err| Error::internal(format!("invalid CA config: {err}")))?;
        NonZeroU32::new(self.shards)
            .ok_or_else(|| Error::internal("invalid CA config: crl.shards is 0"))
    }
}

impl Default for CrlConfig {
    fn default() -> Self {
        Self {
            shards: Self::default_shards(),
            lifetime: Self::default_lifetime(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        default_profile = "classic"

        [grpc]
        listen = "127.0.0.1:9093"
        allowed_clients = { "basalt.ca.CertificateAuthority" = ["ra.basalt"] }

        [tls]
        cert = "pki/ca.pem"
        key = "pki/ca.key"
        ca = "pki/internal-ca.pem"

        [sa]
        address = "127.0.0.1:9095"
        server_name = "sa.basalt"

        [[issuers]]
        cert = "pki/intermediate-ecdsa.pem"
        key = "pki/intermediate-ecdsa.key"
        issuer_url = "http://127.0.0.1:4002/issuers/ecdsa.der"
        crl_url_base = "http://127.0.0.1:4003/ecdsa/"

        [[issuers]]
        cert = "pki/intermediate-rsa.pem"
        pkcs11 = { module = "/usr/lib/softhsm/libsofthsm2.so", token_label = "basalt", key_label = "intermediate-rsa", pin_file = "pki/pin" }

        [crl]
        shards = 16
        lifetime = "4d"

        [profiles.classic]
        validity = "7d"
        ocsp_url = "http://127.0.0.1:4002/"
        common_name = true

        [profiles.shortlived]
        validity = "6d"
        backdate = "5m"
        key_encipherment = false
        identifier_types = ["dns", "ip"]
        max_names = 25
    "#;

    /// The example with its `[profiles...]` tables replaced by `profiles`.
    fn with_profiles(profiles: &str) -> String {
        let head = EXAMPLE.split("[profiles.").next().unwrap_or_default();
        format!("{head}\n{profiles}\n")
    }

    /// 2026-11-29, when the Baseline Requirements allow 200-day leaves.
    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap()
    }

    #[test]
    fn example_config_parses_with_defaults() {
        let config: CaConfig = basalt_config::parse(EXAMPLE).unwrap();
        config.validate(now()).unwrap();
        assert_eq!(
            config.issuers[0].key_source("issuers[0]"),
            Ok(KeySource::File(PathBuf::from("pki/intermediate-ecdsa.key")))
        );
        assert!(config.issuers[0].chain.is_empty());
        let Ok(KeySource::Pkcs11(pkcs11)) = config.issuers[1].key_source("issuers[1]") else {
            panic!("the RSA issuer's key is in a token");
        };
        assert_eq!(pkcs11.key_label, "intermediate-rsa");
        assert_eq!(config.issuers[1].issuer_url, None);
        assert_eq!(
            config.issuers[0].crl_url_base.as_deref(),
            Some("http://127.0.0.1:4003/ecdsa/")
        );
        assert_eq!(config.issuers[1].crl_url_base, None);
        assert_eq!(config.crl.shards, 16);
        assert_eq!(config.crl.lifetime.0, Duration::from_secs(4 * 86_400));
        assert_eq!(config.crl.shard_count().unwrap().get(), 16);
        let profiles = config.to_profiles(now()).unwrap();
        assert_eq!(profiles.default_name(), "classic");
        assert_eq!(profiles.by_name().len(), 2);
        let (name, classic) = profiles.get("").unwrap();
        assert_eq!(name, "classic");
        assert_eq!(classic.validity, Duration::from_secs(7 * 86_400));
        assert_eq!(classic.backdate, Duration::from_secs(3600));
        assert_eq!(classic.ocsp_url.as_deref(), Some("http://127.0.0.1:4002/"));
        assert!(classic.common_name);
        assert!(classic.key_encipherment);
        assert_eq!(classic.identifier_types, [IdentifierType::Dns]);
        assert_eq!(classic.max_names, 100);
        let (_, short) = profiles.get("shortlived").unwrap();
        assert_eq!(short.validity, Duration::from_secs(6 * 86_400));
        assert_eq!(short.backdate, Duration::from_secs(300));
        assert_eq!(short.ocsp_url, None);
        assert!(!short.common_name);
        assert!(!short.key_encipherment);
        assert_eq!(
            short.identifier_types,
            [IdentifierType::Dns, IdentifierType::Ip]
        );
        assert_eq!(short.max_names, 25);
        assert_eq!(config.ocsp.validity.0, Duration::from_secs(4 * 86_400));
    }

    #[test]
    fn missing_sections_take_defaults() {
        let text = with_profiles("")
            .replace("default_profile = \"classic\"", "")
            .replace("[crl]\n        shards = 16\n        lifetime = \"4d\"", "");
        assert!(!text.contains("[crl]"), "{text}");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        assert_eq!(config.default_profile, CLASSIC_PROFILE);
        assert_eq!(
            config.profiles,
            BTreeMap::from([(CLASSIC_PROFILE.to_owned(), ProfileConfig::default())])
        );
        let profiles = config.to_profiles(now()).unwrap();
        assert_eq!(profiles, Profiles::default());
        // Today's shape: no commonName, keyEncipherment for RSA, DNS names only,
        // at most 100 of them.
        let (_, classic) = profiles.get("").unwrap();
        assert!(!classic.common_name);
        assert!(classic.key_encipherment);
        assert_eq!(classic.identifier_types, [IdentifierType::Dns]);
        assert_eq!(classic.max_names, 100);
        assert_eq!(
            profiles.get("").unwrap().1.validity,
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(config.ocsp, OcspSigningConfig::default());
        // One shard, valid for a week.
        assert_eq!(config.crl, CrlConfig::default());
        assert_eq!(config.crl.shards, 1);
        assert_eq!(config.crl.lifetime.0, Duration::from_secs(7 * 86_400));
    }

    #[test]
    fn default_profile_must_exist() {
        let text = EXAMPLE.replace("default_profile = \"classic\"", "default_profile = \"tls\"");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        let err = config.validate(now()).unwrap_err();
        assert!(err.contains("default_profile \"tls\""), "{err}");
        assert!(config.to_profiles(now()).is_err());
        // Defining profiles drops the implicit "classic" one.
        let text = with_profiles("[profiles.tls]\nvalidity = \"30d\"");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        assert!(
            config
                .validate(now())
                .unwrap_err()
                .contains("default_profile")
        );
    }

    #[test]
    fn profile_values_are_checked() {
        for (profiles, expect) in [
            (
                "[profiles.classic]\nvalidity = \"0s\"",
                "profiles.classic.validity",
            ),
            (
                "[profiles.classic]\nvalidity = \"399d\"",
                "profiles.classic.validity",
            ),
            (
                "[profiles.classic]\n[profiles.\"bad name\"]",
                "profile name \"bad name\"",
            ),
            (
                "[profiles.classic]\nocsp_url = \"http://\u{e9}.example/\"",
                "profiles.classic.ocsp_url",
            ),
            (
                "[profiles.classic]\nidentifier_types = []",
                "profiles.classic.identifier_types must list at least one",
            ),
            (
                "[profiles.classic]\nidentifier_types = [\"dns\", \"ip\", \"dns\"]",
                "profiles.classic.identifier_types lists \"dns\" more than once",
            ),
            (
                "[profiles.classic]\nmax_names = 0",
                "profiles.classic.max_names must be 1 to 100",
            ),
            (
                "[profiles.classic]\n[profiles.short]\nmax_names = 101",
                "profiles.short.max_names must be 1 to 100",
            ),
        ] {
            let config: CaConfig = basalt_config::parse(&with_profiles(profiles)).unwrap();
            let err = config.validate(now()).unwrap_err();
            assert!(err.contains(expect), "{profiles}: {err}");
        }
        let text = with_profiles(
            "[profiles.classic]\nvalidity = \"47d\"\nmax_names = 1\nidentifier_types = [\"ip\"]",
        );
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        // Only the two RFC 8555 / RFC 8738 types exist.
        for (profiles, expect) in [
            (
                "[profiles.classic]\nidentifier_types = [\"email\"]",
                "unknown variant `email`",
            ),
            (
                "[profiles.classic]\nidentifier_types = \"dns\"",
                "identifier_types",
            ),
            ("[profiles.classic]\nmax_names = -1", "max_names"),
            ("[profiles.classic]\ncommon_name = \"yes\"", "common_name"),
        ] {
            let err = basalt_config::parse::<CaConfig>(&with_profiles(profiles)).unwrap_err();
            assert!(err.contains(expect), "{profiles}: {err}");
        }
    }

    #[test]
    fn issuers_are_checked() {
        let head = EXAMPLE.split("[[issuers]]").next().unwrap_or_default();
        let tail = EXAMPLE.split("[profiles.").skip(1).collect::<Vec<_>>();
        let with_issuers =
            |issuers: &str| format!("{head}\n{issuers}\n[profiles.{}", tail.join("[profiles."));
        for (issuers, expect) in [
            ("", "`issuers`"),
            (
                "[[issuers]]\ncert = \"c.pem\"",
                "issuers[0] needs key (a PEM file) or pkcs11",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 pkcs11 = { module = \"m.so\", token_label = \"t\", key_label = \"k\", pin_file = \"p\" }",
                "issuers[0] sets both key and pkcs11",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 [[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\nissuer_url = \"ldap://x/\"",
                "issuers[1].issuer_url",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 crl_url_base = \"http://crl.example/1\"",
                "issuers[0].crl_url_base must end with '/'",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 crl_url_base = \"https://crl.example/\"",
                "issuers[0].crl_url_base must be an ASCII http:// URL",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 crl_url_base = \"http://cr\u{e9}.example/\"",
                "issuers[0].crl_url_base must be an ASCII http:// URL",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 crl_url_base = \"http://crl.example/?shard=/\"",
                "issuers[0].crl_url_base must not have a query or fragment",
            ),
            (
                "[[issuers]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 crl_url_base = \"http://crl.example/a/\"\n\
                 [[issuers]]\ncert = \"d.pem\"\nkey = \"l.pem\"\n\
                 [[issuers]]\ncert = \"e.pem\"\nkey = \"m.pem\"\n\
                 crl_url_base = \"http://crl.example/a/\"",
                "issuers[2].crl_url_base is also issuers[0]'s",
            ),
        ] {
            let text = with_issuers(issuers);
            let err = match basalt_config::parse::<CaConfig>(&text) {
                Ok(config) => config.validate(now()).unwrap_err(),
                Err(err) => err,
            };
            assert!(err.contains(expect), "{issuers}: {err}");
        }
    }

    /// An issuer's `ocsp_signer` names a certificate and a key in a file or a
    /// token, and nothing else; without it the issuer signs its own responses.
    #[test]
    fn ocsp_signers_are_parsed_and_checked() {
        let config: CaConfig = basalt_config::parse(EXAMPLE).unwrap();
        assert!(
            config
                .issuers
                .iter()
                .all(|issuer| issuer.ocsp_signer.is_none())
        );
        let with_signer = |signer: &str| {
            EXAMPLE.replace(
                "crl_url_base = \"http://127.0.0.1:4003/ecdsa/\"",
                &format!("crl_url_base = \"http://127.0.0.1:4003/ecdsa/\"\nocsp_signer = {signer}"),
            )
        };
        let text = with_signer("{ cert = \"pki/ocsp-ecdsa.pem\", key = \"pki/ocsp-ecdsa.key\" }");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        let signer = config.issuers[0].ocsp_signer.as_ref().unwrap();
        assert_eq!(signer.cert, PathBuf::from("pki/ocsp-ecdsa.pem"));
        assert_eq!(
            signer.key_source("issuers[0].ocsp_signer"),
            Ok(KeySource::File(PathBuf::from("pki/ocsp-ecdsa.key")))
        );
        assert_eq!(config.issuers[1].ocsp_signer, None);
        let text = with_signer(
            "{ cert = \"o.pem\", pkcs11 = { module = \"m.so\", token_label = \"t\", \
             key_label = \"ocsp\", pin_file = \"p\" } }",
        );
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        assert!(matches!(
            config.issuers[0].ocsp_signer.as_ref().unwrap().key_source("x"),
            Ok(KeySource::Pkcs11(pkcs11)) if pkcs11.key_label == "ocsp"
        ));

        for (signer, expect) in [
            (
                "{ cert = \"o.pem\" }",
                "issuers[0].ocsp_signer needs key (a PEM file) or pkcs11",
            ),
            (
                "{ cert = \"o.pem\", key = \"o.key\", pkcs11 = { module = \"m.so\", \
                 token_label = \"t\", key_label = \"k\", pin_file = \"p\" } }",
                "issuers[0].ocsp_signer sets both key and pkcs11",
            ),
            (
                "{ cert = \"o.pem\", pkcs11 = { module = \"m.so\", token_label = \"t\", \
                 key_label = \"\", pin_file = \"p\" } }",
                "issuers[0].ocsp_signer.pkcs11.key_label must not be empty",
            ),
        ] {
            let config: CaConfig = basalt_config::parse(&with_signer(signer)).unwrap();
            let err = config.validate(now()).unwrap_err();
            assert!(err.contains(expect), "{signer}: {err}");
        }
        for (signer, expect) in [
            ("{ key = \"o.key\" }", "missing field `cert`"),
            (
                "{ cert = \"o.pem\", key = \"o.key\", chain = [] }",
                "unknown field `chain`",
            ),
            ("\"o.pem\"", "ocsp_signer"),
        ] {
            let err = basalt_config::parse::<CaConfig>(&with_signer(signer)).unwrap_err();
            assert!(err.contains(expect), "{signer}: {err}");
        }
    }

    /// Two issuers with their own bases pass, and so do issuers without one.
    #[test]
    fn crl_url_bases_may_differ_or_be_absent() {
        let text = EXAMPLE.replace(
            "pin_file = \"pki/pin\" }",
            "pin_file = \"pki/pin\" }\ncrl_url_base = \"http://127.0.0.1:4003/rsa/\"",
        );
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        assert_eq!(
            config.issuers[1].crl_url_base.as_deref(),
            Some("http://127.0.0.1:4003/rsa/")
        );
        let text = EXAMPLE.replace("crl_url_base = \"http://127.0.0.1:4003/ecdsa/\"", "");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        assert!(config.issuers.iter().all(|i| i.crl_url_base.is_none()));
    }

    #[test]
    fn crl_values_are_checked() {
        let with_crl = |crl: &str| EXAMPLE.replace("shards = 16\n        lifetime = \"4d\"", crl);
        for (crl, expect) in [
            ("shards = 0", "crl.shards must be 1 to 1000"),
            ("shards = 1001", "crl.shards must be 1 to 1000"),
            (
                "lifetime = \"0s\"",
                "crl.lifetime must be at least 1s and at most the 10 days",
            ),
            ("lifetime = \"999ms\"", "crl.lifetime must be at least 1s"),
            (
                "lifetime = \"241h\"",
                "crl.lifetime must be at least 1s and at most the 10 days",
            ),
        ] {
            let config: CaConfig = basalt_config::parse(&with_crl(crl)).unwrap();
            let err = config.validate(now()).unwrap_err();
            assert!(err.contains(expect), "{crl}: {err}");
            assert!(config.to_profiles(now()).is_err(), "{crl}");
            assert!(config.crl.shard_count().is_err(), "{crl}");
        }
        for (crl, shards, lifetime) in [
            ("shards = 1000\nlifetime = \"10d\"", 1000, 10 * 86_400),
            ("shards = 1\nlifetime = \"1s\"", 1, 1),
            ("lifetime = \"240h\"", 1, 10 * 86_400),
        ] {
            let config: CaConfig = basalt_config::parse(&with_crl(crl)).unwrap();
            config.validate(now()).unwrap();
            assert_eq!(config.crl.shards, shards, "{crl}");
            assert_eq!(
                config.crl.lifetime.0,
                Duration::from_secs(lifetime),
                "{crl}"
            );
        }
        for (crl, expect) in [
            ("shards = -1", "shards"),
            ("shards = 4294967296", "shards"),
            ("lifetime = \"7 days\"", "invalid duration"),
            ("shard = 4", "unknown field `shard`"),
        ] {
            let err = basalt_config::parse::<CaConfig>(&with_crl(crl)).unwrap_err();
            assert!(err.contains(expect), "{crl}: {err}");
        }
    }

    /// The production-like example in deploy/config validates, with CRLs for both
    /// issuers.
    #[test]
    fn the_deploy_config_validates() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/ca.toml");
        let config: CaConfig = basalt_config::load(&path).unwrap();
        config.validate(now()).unwrap();
        let bases: Vec<_> = config
            .issuers
            .iter()
            .map(|issuer| issuer.crl_url_base.as_deref())
            .collect();
        assert_eq!(
            bases,
            [
                Some("http://ocsp.example.net/crl/ecdsa/"),
                Some("http://ocsp.example.net/crl/rsa/")
            ]
        );
        assert_eq!(config.crl.shards, 128);
        assert_eq!(config.crl.lifetime.0, Duration::from_secs(7 * 86_400));
        assert!(
            config
                .issuers
                .iter()
                .all(|issuer| issuer.ocsp_signer.is_none())
        );
        // The commented delegated OCSP responder is a valid one.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("# ocsp_signer = ", "ocsp_signer = ");
        let config: CaConfig = basalt_config::parse(&text).unwrap();
        config.validate(now()).unwrap();
        assert!(config.issuers[0].ocsp_signer.is_some());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = EXAMPLE.replace("validity = \"7d\"", "validty = \"7d\"");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `validty`"), "{err}");
        let text = format!("{EXAMPLE}\n[ocsp]\nvalidity = \"1d\"\nnonce = true\n");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `nonce`"), "{err}");
        // The single [profile] table of older configs is gone.
        let text = with_profiles("[profile]\nvalidity = \"7d\"");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `profile`"), "{err}");
        // The CRL distribution point moved from the profile to the issuer.
        let text = with_profiles("[profiles.classic]\ncrl_url = \"http://crl.example/1.crl\"");
        let err = basalt_config::parse::<CaConfig>(&text).unwrap_err();
        assert!(err.contains("unknown field `crl_url`"), "{err}");
    }
}
