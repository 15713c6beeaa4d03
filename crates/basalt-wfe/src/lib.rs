//! The ACME web front end (RFC 8555) over HTTPS.
//!
//! The WFE is the only service the Internet reaches. It authenticates every request
//! (flattened JWS, anti-replay nonces), turns ACME resources into calls on the
//! registration authority and reads from the storage authority, and renders every
//! failure as an RFC 8555 problem document. It holds no state of its own beyond the
//! nonces, and talks to its peers only through the basalt-core traits.
//!
//! ```text
//! router(Arc<Wfe>) ─┬─ GET|POST /directory, HEAD|GET|POST /acme/new-nonce
//!                   ├─ GET|POST /acme/renewal-info/{certID}   (ARI, RFC 9773)
//!                   └─ POST /acme/{new-account, acct/{id}[/orders], key-change, new-order,
//!                                 order/{id}[/finalize], authz/{id}, chall/{authz_id}/{type},
//!                                 cert/{serial}[/{n}], revoke-cert}
//! ```
//!
//! Beyond RFC 8555: certificate profiles (draft-ietf-acme-profiles, `meta.profiles`
//! and the order's `profile`), ACME Renewal Information (RFC 9773, `renewalInfo`
//! and the order's `replaces`) and external account binding (RFC 8555 §7.3.4,
//! HS256/HS384/HS512 MACs).
//!
//! Alternate chains (RFC 8555 §7.4.2): `/acme/cert/{serial}` serves the chain stored
//! with the certificate and links (`rel="alternate"`) to `/acme/cert/{serial}/{n}`
//! for each configured [`IssuerChain`] certifying the same issuer (name and key).
//!
//! Every POST body is capped at 64 KiB (a larger one gets a 413 malformed problem).
//! Account keys may be RSA (2048–4096 bits), P-256, P-384 or Ed25519.
#![warn(missing_docs)]

mod accounts;
mod ari;
mod chains;
mod config;
mod der;
mod eab;
mod handlers;
mod jws;
mod problem;
mod serve;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use basalt_core::Clock;
use basalt_core::Error;
use basalt_core::Nonces;
use basalt_core::RegistrationAuthority;
use basalt_core::StorageReadOnly;
use basalt_core::SystemClock;

use crate::accounts::AccountCache;
pub use crate::chains::IssuerChain;
pub use crate::config::DirectoryConfig;
pub use crate::config::EabConfig;
pub use crate::config::HttpsConfig;
pub use crate::config::WfeConfig;
pub use crate::handlers::router;
pub use crate::serve::serve_https;
pub use crate::serve::serve_https_on;

/// What the WFE needs to know about how it is reached and what it advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WfeSettings {
    /// The public base URL, e.g. `https://127.0.0.1:14000` (a trailing slash is
    /// ignored). Every URL the WFE hands out, and every JWS `url` it accepts, starts
    /// with it.
    pub base_url: String,
    /// The terms of service URL for the directory's `meta`; when set, new accounts
    /// must send `termsOfServiceAgreed: true`.
    pub terms_of_service: Option<String>,
    /// The CA's website for the directory's `meta`.
    pub website: Option<String>,
    /// The certificate profiles for the directory's `meta.profiles` (name →
    /// description); empty advertises none.
    pub profiles: BTreeMap<String, String>,
    /// Whether new accounts need an external account binding (RFC 8555 §7.3.4).
    pub eab_required: bool,
    /// The CAA identities for the directory's `meta.caaIdentities`; empty
    /// advertises none.
    pub caa_identities: Vec<String>,
    /// Alternate issuer chains (RFC 8555 §7.4.2), offered for every certificate
    /// whose issuer they certify.
    pub alternate_chains: Vec<IssuerChain>,
    /// How long an account read from the SA answers later requests (zero: none).
    pub account_cache_ttl: std::time::Duration,
}

impl WfeSettings {
    /// The settings a [`WfeConfig`] describes, reading its alternate chains; a file
    /// that cannot be read or is no usable chain is an error naming it.
    pub fn from_config(config: &WfeConfig) -> Result<Self, Error> {
        let alternate_chains = config
            .alternate_chains
            .iter()
            .map(|path| IssuerChain::load(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            base_url: config.base_url.clone(),
            terms_of_service: config.directory.terms_of_service.clone(),
            website: config.directory.website.clone(),
            profiles: config.directory.profiles.clone(),
            eab_required: config.eab.required,
            caa_identities: config.directory.caa_identities.clone(),
            alternate_chains,
            account_cache_ttl: config.account_cache_ttl.0,
        })
    }
}

/// The web front end: its settings, its peers and its nonces. Share it as
/// `Arc<Wfe>` with [`router`].
pub struct Wfe {
    settings: WfeSettings,
    ra: Arc<dyn RegistrationAuthority>,
    sa: Arc<dyn StorageReadOnly>,
    nonces: Arc<dyn Nonces>,
    accounts: AccountCache,
    clock: Arc<dyn Clock>,
}

impl Wfe {
    /// A WFE keeping its own nonces, in process (one WFE alone).
    pub fn new(
        settings: WfeSettings,
        ra: Arc<dyn RegistrationAuthority>,
        sa: Arc<dyn StorageReadOnly>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let nonces = Arc::new(basalt_nonce::NonceService::with_defaults(clock.clone()));
        Self::with_nonces(settings, ra, sa, nonces).with_clock(clock)
    }

    /// A WFE with the given nonces (e.g. the `basalt nonce` service, so several
    /// WFEs redeem each other's nonces). It reads the system clock; see
    /// [`Wfe::with_clock`].
    pub fn with_nonces(
        mut settings: WfeSettings,
        ra: Arc<dyn RegistrationAuthority>,
        sa: Arc<dyn StorageReadOnly>,
        nonces: Arc<dyn Nonces>,
    ) -> Self {
        let trimmed = settings.base_url.trim_end_matches('/').len();
        settings.base_url.truncate(trimmed);
        Self {
            accounts: AccountCache::new(settings.account_cache_ttl),
            settings,
            ra,
            sa,
            nonces,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same WFE reading the time from `clock` (only renewal information for
    /// certificates revoked or named in an incident depends on it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Its settings.
    pub fn settings(&self) -> &WfeSettings {
        &self.settings
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url)
    }
}

impl fmt::Debug for Wfe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wfe")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
