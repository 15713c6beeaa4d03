//! The TLS client the VA validates with (tls-alpn-01, and https redirect targets of
//! http-01): ring, TLS 1.2 or 1.3, and no certificate checks, since control of a
//! name is proven by the challenge, not by a certificate chain (Boulder does the same).

use std::sync::Arc;

use basalt_core::Error;
use rustls::CertificateError;
use rustls::DigitallySignedStruct;
use rustls::PeerMisbehaved;
use rustls::SignatureScheme;
use rustls::client::Resumption;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::danger::ServerCertVerified;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::ServerName;
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::UnixTime;
use x509_parser::der_parser::asn1_rs::Any;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;

/// A client config offering `alpn` that accepts any certificate (still checking
/// the handshake signatures, see [`AcceptAnyCertificate`]). With `resume` false no
/// session is resumed: a resumed session carries no certificate, and a tls-alpn-01
/// validation must judge the certificate the server presents now.
pub(crate) fn unverified_client_config(
    alpn: &[u8],
    resume: bool,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::internal(format!("cannot build tls config: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(config)
}

/// Accepts any certificate, and still verifies the handshake signatures with
/// the provider's algorithms, so the peer must hold the certificate's key.
///
/// The public key is read with x509-parser, not webpki (which rustls's
/// `verify_tls1x_signature` use): webpki refuses a certificate carrying a
/// critical extension it does not know, and a tls-alpn-01 certificate always
/// carries one, acmeIdentifier.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    /// TLS 1.2 does not tie a scheme to one algorithm (an ECDSA scheme names
    /// the hash, not the curve), so every algorithm the scheme maps to and
    /// whose key type is the certificate's is tried, as rustls does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = PeerKey::of(cert)?;
        let algorithms = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        let verified = algorithms
            .iter()
            .filter(|algorithm| algorithm.public_key_alg_id().as_ref() == key.algorithm)
            .any(|algorithm| {
                algorithm
                    .verify_signature(key.public_key, message, dss.signature())
                    .is_ok()
            });
        if !verified {
            return Err(CertificateError::BadSignature.into());
        }
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = PeerKey::of(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(key.spki),
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The public key of the peer's certificate, in the three forms signature
/// verification needs.
struct PeerKey<'a> {
    /// The whole DER SubjectPublicKeyInfo.
    spki: &'a [u8],
    /// The contents of its AlgorithmIdentifier, as
    /// `SignatureVerificationAlgorithm::public_key_alg_id` has them.
    algorithm: &'a [u8],
    /// The subjectPublicKey bits.
    public_key: &'a [u8],
}

impl<'a> PeerKey<'a> {
    fn of(cert: &'a CertificateDer<'_>) -> Result<Self, rustls::Error> {
        let bad = || rustls::Error::from(CertificateError::BadEncoding);
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| bad())?;
        let spki = parsed.tbs_certificate.subject_pki.raw;
        // SubjectPublicKeyInfo ::= SEQUENCE {
        //     algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
        let (_, outer) = Any::from_der(spki).map_err(|_| bad())?;
        let (rest, algorithm) = Any::from_der(outer.data).map_err(|_| bad())?;
        let (_, bits) = Any::from_der(rest).map_err(|_| bad())?;
        // A key is whole bytes: the leading unused-bits count must be zero.
        let public_key = match bits.data {
            [0, key @ ..] if bits.tag() == Tag::BitString => key,
            _ => return Err(bad()),
        };
        Ok(Self {
            spki,
            algorithm: algorithm.data,
            public_key,
        })
    }
}
