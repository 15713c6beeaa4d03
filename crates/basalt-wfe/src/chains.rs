//! Alternate issuer chains (RFC 8555 §7.4.2): the same issuer certified by other
//! roots (cross-signed), offered beside the chain stored with each certificate.

use std::fmt;
use std::path::Path;

use basalt_core::Error;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

use crate::der::authority_key_identifier;
use crate::der::issuer_and_subject;
use crate::der::subject_key_identifier;

/// An issuer chain, DER, nearest first: an intermediate, optionally followed by the
/// certificates above it (never needed: the root).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerChain {
    certificates: Vec<Vec<u8>>,
    /// The `Name` contents of the first certificate's subject.
    subject: Vec<u8>,
    /// The first certificate's subject key identifier.
    key_id: Vec<u8>,
}

impl IssuerChain {
    /// A chain from DER certificates, nearest first. The first must carry a subject
    /// key identifier (it is how certificates are matched to it), and each must be
    /// issued by the next one's subject.
    pub fn from_der(certificates: Vec<Vec<u8>>) -> Result<Self, Error> {
        let first = certificates
            .first()
            .ok_or_else(|| Error::malformed("an issuer chain holds no certificate"))?;
        let (_, subject) = issuer_and_subject(first)?;
        let subject = subject.to_vec();
        let key_id = subject_key_identifier(first)?.ok_or_else(|| {
            Error::malformed(
                "the first certificate of an issuer chain has no subject key identifier",
            )
        })?;
        for (n, pair) in certificates.windows(2).enumerate() {
            let (issuer, _) = issuer_and_subject(&pair[0])?;
            let (_, next_subject) = issuer_and_subject(&pair[1])?;
            if issuer != next_subject {
                return Err(Error::malformed(format!(
                    "certificate {} of an issuer chain is not issued by certificate {}",
                    n + 1,
                    n + 2
                )));
            }
        }
        Ok(Self {
            certificates,
            subject,
            key_id,
        })
    }

    /// A chain from PEM text (`CERTIFICATE` blocks, nearest first; other blocks are
    /// ignored).
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .map(|cert| cert.map(|cert| cert.as_ref().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| Error::malformed(format!("invalid PEM: {err}")))?;
        Self::from_der(certificates)
    }

    /// A chain from a PEM file; the error names the file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|err| {
            Error::internal(format!(
                "cannot read alternate chain {}: {err}",
                path.display()
            ))
        })?;
        Self::from_pem(&pem).map_err(|err| {
            Error::internal(format!(
                "invalid alternate chain {}: {}",
                path.display(),
                err.detail
            ))
        })
    }

    /// Its certificates, DER, nearest first.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Whether it certifies the issuer of a certificate with issuer name `issuer`
    /// (`Name` contents) and authority key identifier `key_id`.
    fn issues(&self, issuer: &[u8], key_id: &[u8]) -> bool {
        self.subject == issuer && self.key_id == key_id
    }
}

impl fmt::Debug for IssuerChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_id: String = self.key_id.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("IssuerChain")
            .field("certificates", &self.certificates.len())
            .field("key_id", &key_id)
            .finish_non_exhaustive()
    }
}

/// The chains among `chains` that also certify the issuer of `leaf` (DER), in
/// order, leaving out one identical to `default`. A certificate the WFE cannot read
/// (it issued it, so this is not expected) gets none, with a warning.
pub(crate) fn alternates_for<'a>(
    chains: &'a [IssuerChain],
    leaf: &[u8],
    default: &[Vec<u8>],
) -> Vec<&'a IssuerChain> {
    if chains.is_empty() {
        return Vec::new();
    }
    let names = issuer_and_subject(leaf)
        .and_then(|(issuer, _)| Ok(authority_key_identifier(leaf)?.map(|key_id| (issuer, key_id))));
    let (issuer, key_id) = match names {
        Ok(Some(names)) => names,
        Ok(None) => return Vec::new(),
        Err(err) => {
            warn!(error = %err, "cannot read a certificate's issuer; no alternate chains offered");
            return Vec::new();
        }
    };
    chains
        .iter()
        .filter(|chain| chain.issues(issuer, &key_id) && chain.certificates != default)
        .collect()
}
