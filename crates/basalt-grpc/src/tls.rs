//! Mutual TLS 1.3 for every gRPC link, on rustls with the ring provider.
//!
//! Both ends present a certificate from the internal CA named in `[tls] ca`; a
//! service's name is the DNS SAN of its certificate, and that name is what the
//! allow-lists hold. Only TLS 1.3 is offered: these links are between our own
//! processes, so there is no legacy peer to accommodate.

use std::path::Path;
use std::sync::Arc;

use basalt_config::TlsConfig;
use basalt_core::Error;
use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::WebPkiClientVerifier;

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read(path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::internal(format!("invalid PEM in {}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::internal(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|err| Error::internal(format!("invalid PEM in {}: {err}", path.display())))?
        .ok_or_else(|| Error::internal(format!("no private key in {}", path.display())))
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", path.display())))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(tls: &TlsConfig) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(&tls.ca)? {
        roots.add(cert).map_err(|err| {
            Error::internal(format!(
                "invalid CA certificate in {}: {err}",
                tls.ca.display()
            ))
        })?;
    }
    Ok(roots)
}

fn tls_error(what: &str) -> impl Fn(rustls::Error) -> Error + '_ {
    move |err| Error::internal(format!("{what}: {err}"))
}

/// The server side: TLS 1.3 only, a client certificate from the internal CA required.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(tls)?), provider.clone())
            .build()
            .map_err(|err| Error::internal(format!("client verifier: {err}")))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("server TLS versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&tls.cert)?, load_key(&tls.key)?)
        .map_err(tls_error("server certificate"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The client side: TLS 1.3 only, presenting this service's certificate.
pub fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error("client TLS versions"))?
        .with_root_certificates(roots(tls)?)
        .with_client_auth_cert(load_certs(&tls.cert)?, load_key(&tls.key)?)
        .map_err(tls_error("client certificate"))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The DNS names in a certificate's subjectAltName: the names a peer is known by.
pub fn dns_names(cert: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;

    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
