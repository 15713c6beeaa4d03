//! The certificate authority over gRPC: [`CaClient`] for the RA and the OCSP
//! responder, [`ca_servers`] to serve any CA.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::AccountId;
use basalt_core::CertIdHash;
use basalt_core::CertificateAuthority;
use basalt_core::Error;
use basalt_core::IssueRequest;
use basalt_core::IssuedCertificate;
use basalt_core::OcspRequestEntry;
use basalt_core::OrderId;
use basalt_core::RevocationSigner;
use basalt_proto::ca as pb;
use basalt_proto::ca::certificate_authority_client::CertificateAuthorityClient;
use basalt_proto::ca::certificate_authority_server::CertificateAuthorityServer;
use basalt_proto::ca::revocation_signer_client::RevocationSignerClient;
use basalt_proto::ca::revocation_signer_server::RevocationSignerServer;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::GrpcChannel;
use crate::not_yet;
use crate::status::StatusExt;
use crate::status::to_status;

/// Calls the CA's `CertificateAuthority` and `RevocationSigner` services.
#[derive(Clone, Debug)]
pub struct CaClient(GrpcChannel);

impl CaClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self(channel)
    }
}

#[async_trait]
impl CertificateAuthority for CaClient {
    async fn issue_certificate(&self, request: IssueRequest) -> Result<IssuedCertificate, Error> {
        let request = self.0.request(pb::IssueCertificateRequest {
            csr: request.csr_der,
            account_id: request.account_id.0,
            order_id: request.order_id.0,
            identifiers: basalt_proto::to_vec(request.identifiers),
            profile: request.profile,
            not_before: basalt_proto::opt_timestamp(request.not_before),
            not_after: basalt_proto::opt_timestamp(request.not_after),
        });
        let response = CertificateAuthorityClient::new(self.0.channel.clone())
            .issue_certificate(request)
            .await
            .map_status()?;
        Ok(IssuedCertificate {
            serial: basalt_proto::serial(&response.serial)?,
            der: response.der,
            chain: response.chain,
        })
    }
}

#[async_trait]
impl RevocationSigner for CaClient {
    async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
        let request = self.0.request(pb::SignOcspRequest {
            entries: entries
                .into_iter()
                .map(|entry| pb::OcspEntry {
                    serial: entry.serial.to_string(),
                    status: entry.status.as_str().to_owned(),
                    revoked_at: basalt_proto::opt_timestamp(entry.revoked_at),
                    reason: entry.reason.map(|reason| u32::from(reason.code())),
                    issuer_key_hash: entry.issuer_key_hash,
                    hash_algorithm: entry.hash_algorithm.as_str().to_owned(),
                })
                .collect(),
        });
        let response = RevocationSignerClient::new(self.0.channel.clone())
            .sign_ocsp(request)
            .await
            .map_status()?;
        Ok(response.responses)
    }
}

/// Serves a CA over gRPC.
pub struct CaService<T>(Arc<T>);

#[async_trait]
impl<T: CertificateAuthority> pb::certificate_authority_server::CertificateAuthority
    for CaService<T>
{
    async fn issue_certificate(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let request = request.into_inner();
        let identifiers = basalt_proto::try_vec(request.identifiers).map_err(to_status)?;
        let not_before = basalt_proto::opt_from_timestamp(request.not_before).map_err(to_status)?;
        let not_after = basalt_proto::opt_from_timestamp(request.not_after).map_err(to_status)?;
        let issued = self
            .0
            .issue_certificate(IssueRequest {
                csr_der: request.csr,
                account_id: AccountId(request.account_id),
                order_id: OrderId(request.order_id),
                identifiers,
                profile: request.profile,
                not_before,
                not_after,
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::IssueCertificateResponse {
            serial: issued.serial.to_string(),
            der: issued.der,
            chain: issued.chain,
        }))
    }
}

#[async_trait]
impl<T: RevocationSigner> pb::revocation_signer_server::RevocationSigner for CaService<T> {
    async fn sign_ocsp(
        &self,
        request: Request<pb::SignOcspRequest>,
    ) -> Result<Response<pb::SignOcspResponse>, Status> {
        let entries = request
            .into_inner()
            .entries
            .into_iter()
            .map(|entry| {
                Ok(OcspRequestEntry {
                    serial: basalt_proto::serial(&entry.serial)?,
                    status: basalt_proto::parse_field(&entry.status, "status")?,
                    revoked_at: basalt_proto::opt_from_timestamp(entry.revoked_at)?,
                    reason: basalt_proto::opt_reason(entry.reason)?,
                    issuer_key_hash: entry.issuer_key_hash,
                    hash_algorithm: if entry.hash_algorithm.is_empty() {
                        CertIdHash::Sha1
                    } else {
                        basalt_proto::parse_field(&entry.hash_algorithm, "hash_algorithm")?
                    },
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map_err(to_status)?;
        let responses = self.0.sign_ocsp(entries).await.map_err(to_status)?;
        Ok(Response::new(pb::SignOcspResponse { responses }))
    }

    type GenerateCrlStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::GenerateCrlResponse, Status>> + Send>>;

    async fn generate_crl(
        &self,
        _request: Request<Streaming<pb::GenerateCrlRequest>>,
    ) -> Result<Response<Self::GenerateCrlStream>, Status> {
        Err(not_yet("CRL generation"))
    }
}

/// The tonic services for a CA, ready for [`crate::GrpcServer::add_service`].
pub fn ca_servers<T: CertificateAuthority + RevocationSigner>(
    ca: Arc<T>,
) -> (
    CertificateAuthorityServer<CaService<T>>,
    RevocationSignerServer<CaService<T>>,
) {
    (
        CertificateAuthorityServer::new(CaService(ca.clone())),
        RevocationSignerServer::new(CaService(ca)),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use basalt_core::OcspStatus;
    use basalt_core::RevocationReason;
    use basalt_proto::ca::revocation_signer_server::RevocationSigner as _;

    use super::*;

    /// Records the entries it is asked to sign.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<OcspRequestEntry>>);

    #[async_trait]
    impl RevocationSigner for Recorder {
        async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
            let responses = entries.iter().map(|_| vec![1]).collect();
            self.0.lock().unwrap().extend(entries);
            Ok(responses)
        }
    }

    fn pb_entry(status: &str, hash_algorithm: &str) -> pb::OcspEntry {
        pb::OcspEntry {
            serial: "0a0b".to_owned(),
            status: status.to_owned(),
            revoked_at: None,
            reason: None,
            issuer_key_hash: vec![0xab; 20],
            hash_algorithm: hash_algorithm.to_owned(),
        }
    }

    /// The server side reads every status and hash algorithm, and an empty
    /// algorithm (a responder older than the field) as SHA-1.
    #[tokio::test]
    async fn ocsp_entries_are_read_from_the_wire() {
        let recorder = Arc::new(Recorder::default());
        let service = CaService(recorder.clone());
        let request = pb::SignOcspRequest {
            entries: vec![
                pb_entry("unknown", "sha256"),
                pb_entry("good", ""),
                pb::OcspEntry {
                    revoked_at: basalt_proto::opt_timestamp(Some(time::OffsetDateTime::UNIX_EPOCH)),
                    reason: Some(1),
                    ..pb_entry("revoked", "sha1")
                },
            ],
        };
        let response = service.sign_ocsp(Request::new(request)).await.unwrap();
        assert_eq!(response.into_inner().responses.len(), 3);
        let entries = recorder.0.lock().unwrap().clone();
        let read: Vec<_> = entries
            .iter()
            .map(|entry| (entry.status, entry.hash_algorithm, entry.reason))
            .collect();
        assert_eq!(
            read,
            vec![
                (OcspStatus::Unknown, CertIdHash::Sha256, None),
                (OcspStatus::Good, CertIdHash::Sha1, None),
                (
                    OcspStatus::Revoked,
                    CertIdHash::Sha1,
                    Some(RevocationReason::KeyCompromise)
                ),
            ]
        );
        // A value no peer of this version sends is a bug, not the client's input.
        for (bad, field) in [
            (pb_entry("maybe", "sha1"), "field status"),
            (pb_entry("good", "md5"), "field hash_algorithm"),
        ] {
            let request = pb::SignOcspRequest { entries: vec![bad] };
            let status = service.sign_ocsp(Request::new(request)).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::Internal, "{status}");
            assert!(status.message().starts_with(field), "{status}");
        }
    }
}
