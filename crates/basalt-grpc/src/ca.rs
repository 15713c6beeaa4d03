//! The certificate authority over gRPC: [`CaClient`] for the RA and the OCSP
//! responder, [`ca_servers`] to serve any CA.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::AccountId;
use basalt_core::CertIdHash;
use basalt_core::CertificateAuthority;
use basalt_core::CrlRequest;
use basalt_core::Error;
use basalt_core::IssueRequest;
use basalt_core::IssuedCertificate;
use basalt_core::OcspRequestEntry;
use basalt_core::OrderId;
use basalt_core::RevocationSigner;
use basalt_core::RevokedEntry;
use basalt_proto::ca as pb;
use basalt_proto::ca::certificate_authority_client::CertificateAuthorityClient;
use basalt_proto::ca::certificate_authority_server::CertificateAuthorityServer;
use basalt_proto::ca::generate_crl_request::Payload;
use basalt_proto::ca::revocation_signer_client::RevocationSignerClient;
use basalt_proto::ca::revocation_signer_server::RevocationSignerServer;
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use crate::GrpcChannel;
use crate::status::StatusExt;
use crate::status::from_status;
use crate::status::to_status;

/// The largest CRL [`CaClient::generate_crl`] accepts: a shard of a million
/// entries (about 40 bytes each with a reason code) is well below it, so a larger
/// answer is a fault, not a CRL to buffer.
const MAX_CRL_SIZE: usize = 64 << 20;

/// The most entries the server reads for one CRL, so a runaway stream cannot
/// exhaust the CA's memory: a million, as [`MAX_CRL_SIZE`] allows.
const MAX_CRL_ENTRIES: usize = 1_000_000;

/// The size of the DER chunks a CRL is streamed back in, well under gRPC's
/// 4 MiB message limit.
const CRL_CHUNK_SIZE: usize = 64 << 10;

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

    /// Streams the metadata, then one message per entry, and gathers the DER the
    /// CA streams back, up to 64 MiB.
    async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
        let metadata = pb::GenerateCrlRequest {
            payload: Some(Payload::Metadata(pb::CrlMetadata {
                issuer_key_hash: request.issuer_key_hash,
                shard: request.shard,
                this_update: Some(basalt_proto::timestamp(request.this_update)),
            })),
        };
        let entries = request
            .entries
            .into_iter()
            .map(|entry| pb::GenerateCrlRequest {
                payload: Some(Payload::Entry(pb::CrlEntry {
                    serial: entry.serial.to_string(),
                    reason: u32::from(entry.reason.code()),
                    revoked_at: Some(basalt_proto::timestamp(entry.revoked_at)),
                })),
            });
        let messages = tokio_stream::iter(std::iter::once(metadata).chain(entries));
        let mut chunks = RevocationSignerClient::new(self.0.channel.clone())
            .generate_crl(self.0.request(messages))
            .await
            .map_status()?;
        let mut der = Vec::new();
        while let Some(response) = chunks.message().await.map_err(from_status)? {
            if der.len() + response.chunk.len() > MAX_CRL_SIZE {
                return Err(Error::internal(format!(
                    "the CA's CRL is larger than {} MiB",
                    MAX_CRL_SIZE >> 20
                )));
            }
            der.extend_from_slice(&response.chunk);
        }
        if der.is_empty() {
            return Err(Error::internal("the CA sent an empty CRL"));
        }
        Ok(der)
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

    type GenerateCrlStream = CrlStream;

    async fn generate_crl(
        &self,
        request: Request<Streaming<pb::GenerateCrlRequest>>,
    ) -> Result<Response<CrlStream>, Status> {
        self.crl_response(request.into_inner()).await
    }
}

/// The DER chunks of a CRL, as `GenerateCrl` streams them back.
type CrlStream = Pin<Box<dyn Stream<Item = Result<pb::GenerateCrlResponse, Status>> + Send>>;

impl<T: RevocationSigner> CaService<T> {
    /// Answers a `GenerateCrl` stream: reads the request, has the CA sign it and
    /// streams the DER back in chunks.
    async fn crl_response(
        &self,
        messages: impl Stream<Item = Result<pb::GenerateCrlRequest, Status>> + Unpin,
    ) -> Result<Response<CrlStream>, Status> {
        let request = read_crl_request(messages).await?;
        let der = self.0.generate_crl(request).await.map_err(to_status)?;
        Ok(Response::new(Box::pin(tokio_stream::iter(crl_chunks(
            &der,
        )))))
    }
}

/// Reads a `GenerateCrl` request stream: the metadata first, then only entries,
/// at most [`MAX_CRL_ENTRIES`] of them. Any other order is
/// [`basalt_core::ErrorKind::Malformed`]; a failed stream ends with its own status.
async fn read_crl_request(
    mut messages: impl Stream<Item = Result<pb::GenerateCrlRequest, Status>> + Unpin,
) -> Result<CrlRequest, Status> {
    let malformed = |detail: &str| to_status(Error::malformed(detail));
    let metadata = match messages.next().await.transpose()? {
        Some(pb::GenerateCrlRequest {
            payload: Some(Payload::Metadata(metadata)),
        }) => metadata,
        Some(_) => {
            return Err(malformed(
                "a GenerateCrl stream must start with the CRL metadata",
            ));
        }
        None => return Err(malformed("the GenerateCrl stream is empty")),
    };
    let this_update =
        basalt_proto::required_time(metadata.this_update, "this_update").map_err(to_status)?;
    let mut entries = Vec::new();
    while let Some(message) = messages.next().await.transpose()? {
        let entry = match message.payload {
            Some(Payload::Entry(entry)) => entry,
            Some(Payload::Metadata(_)) => {
                return Err(malformed(
                    "a GenerateCrl stream carries the CRL metadata once, first",
                ));
            }
            None => return Err(malformed("a GenerateCrl message has no payload")),
        };
        if entries.len() == MAX_CRL_ENTRIES {
            return Err(malformed(&format!(
                "a CRL may list at most {MAX_CRL_ENTRIES} certificates"
            )));
        }
        entries.push(crl_entry(entry).map_err(to_status)?);
    }
    Ok(CrlRequest {
        issuer_key_hash: metadata.issuer_key_hash,
        shard: metadata.shard,
        this_update,
        entries,
    })
}

fn crl_entry(entry: pb::CrlEntry) -> Result<RevokedEntry, Error> {
    Ok(RevokedEntry {
        serial: basalt_proto::serial(&entry.serial)?,
        revoked_at: basalt_proto::required_time(entry.revoked_at, "revoked_at")?,
        reason: basalt_proto::reason(entry.reason)?,
    })
}

/// A CRL as the messages that stream it back, [`CRL_CHUNK_SIZE`] bytes each.
fn crl_chunks(der: &[u8]) -> Vec<Result<pb::GenerateCrlResponse, Status>> {
    der.chunks(CRL_CHUNK_SIZE)
        .map(|chunk| {
            Ok(pb::GenerateCrlResponse {
                chunk: chunk.to_vec(),
            })
        })
        .collect()
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

    use basalt_core::ErrorKind;
    use basalt_core::OcspStatus;
    use basalt_core::RevocationReason;
    use basalt_proto::ca::revocation_signer_server::RevocationSigner as _;
    use time::OffsetDateTime;

    use super::*;

    /// Records the OCSP entries and CRL requests it is asked to sign; a CRL is
    /// `crl_size` bytes counting up from the shard number.
    #[derive(Default)]
    struct Recorder {
        ocsp: Mutex<Vec<OcspRequestEntry>>,
        crls: Mutex<Vec<CrlRequest>>,
        crl_size: usize,
    }

    #[async_trait]
    impl RevocationSigner for Recorder {
        async fn sign_ocsp(&self, entries: Vec<OcspRequestEntry>) -> Result<Vec<Vec<u8>>, Error> {
            let responses = entries.iter().map(|_| vec![1]).collect();
            self.ocsp.lock().unwrap().extend(entries);
            Ok(responses)
        }

        async fn generate_crl(&self, request: CrlRequest) -> Result<Vec<u8>, Error> {
            if request.shard == 99 {
                return Err(Error::malformed("CRL shard 99 is out of range"));
            }
            let der = (0..self.crl_size)
                .map(|i| (i + request.shard as usize) as u8)
                .collect();
            self.crls.lock().unwrap().push(request);
            Ok(der)
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
                    revoked_at: basalt_proto::opt_timestamp(Some(OffsetDateTime::UNIX_EPOCH)),
                    reason: Some(1),
                    ..pb_entry("revoked", "sha1")
                },
            ],
        };
        let response = service.sign_ocsp(Request::new(request)).await.unwrap();
        assert_eq!(response.into_inner().responses.len(), 3);
        let entries = recorder.ocsp.lock().unwrap().clone();
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

    fn metadata(shard: u32, this_update: Option<OffsetDateTime>) -> pb::GenerateCrlRequest {
        pb::GenerateCrlRequest {
            payload: Some(Payload::Metadata(pb::CrlMetadata {
                issuer_key_hash: vec![0xcd; 20],
                shard,
                this_update: basalt_proto::opt_timestamp(this_update),
            })),
        }
    }

    fn crl_entry_message(serial: &str, reason: u32) -> pb::GenerateCrlRequest {
        pb::GenerateCrlRequest {
            payload: Some(Payload::Entry(pb::CrlEntry {
                serial: serial.to_owned(),
                reason,
                revoked_at: basalt_proto::opt_timestamp(Some(OffsetDateTime::UNIX_EPOCH)),
            })),
        }
    }

    /// The stream a client would send, as the server reads it.
    fn stream(
        messages: Vec<pb::GenerateCrlRequest>,
    ) -> impl Stream<Item = Result<pb::GenerateCrlRequest, Status>> + Unpin {
        tokio_stream::iter(messages.into_iter().map(Ok))
    }

    /// Gathers a response stream's chunks, as the client does.
    async fn gather(mut response: CrlStream) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        while let Some(chunk) = response.next().await {
            chunks.push(chunk.unwrap().chunk);
        }
        chunks
    }

    /// The server reads the metadata and entries into a `CrlRequest`, and
    /// streams a CRL larger than one chunk back in 64 KiB chunks.
    #[tokio::test]
    async fn crl_requests_are_read_and_crls_streamed_back_in_chunks() {
        let recorder = Arc::new(Recorder {
            crl_size: 2 * CRL_CHUNK_SIZE + 17,
            ..Recorder::default()
        });
        let service = CaService(recorder.clone());
        let this_update =
            OffsetDateTime::from_unix_timestamp_nanos(1_780_272_000_123_456_789).unwrap();
        let response = service
            .crl_response(stream(vec![
                metadata(3, Some(this_update)),
                crl_entry_message("ff01", 1),
                crl_entry_message("0a", 0),
            ]))
            .await
            .unwrap();
        let chunks = gather(response.into_inner()).await;
        let sizes: Vec<_> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [CRL_CHUNK_SIZE, CRL_CHUNK_SIZE, 17]);
        let expected: Vec<u8> = (0..2 * CRL_CHUNK_SIZE + 17)
            .map(|i| (i + 3) as u8)
            .collect();
        assert_eq!(chunks.concat(), expected);
        let requests = recorder.crls.lock().unwrap().clone();
        assert_eq!(
            requests,
            [CrlRequest {
                issuer_key_hash: vec![0xcd; 20],
                shard: 3,
                this_update,
                entries: vec![
                    RevokedEntry {
                        serial: "ff01".parse().unwrap(),
                        revoked_at: OffsetDateTime::UNIX_EPOCH,
                        reason: RevocationReason::KeyCompromise,
                    },
                    RevokedEntry {
                        serial: "0a".parse().unwrap(),
                        revoked_at: OffsetDateTime::UNIX_EPOCH,
                        reason: RevocationReason::Unspecified,
                    },
                ],
            }]
        );

        // Metadata alone: a CRL of no entries.
        let response = service
            .crl_response(stream(vec![metadata(0, Some(this_update))]))
            .await
            .unwrap();
        assert_eq!(
            gather(response.into_inner()).await.concat().len(),
            2 * CRL_CHUNK_SIZE + 17
        );
        assert!(recorder.crls.lock().unwrap()[1].entries.is_empty());
    }

    /// A stream out of order is InvalidArgument, as are a bad reason code and the
    /// CA's own refusal; missing fields are a peer's bug (Internal); a stream that
    /// fails keeps its status. The CA is asked nothing it should not be.
    #[tokio::test]
    async fn malformed_crl_streams_are_refused() {
        let recorder = Arc::new(Recorder::default());
        let service = CaService(recorder.clone());
        let now = Some(OffsetDateTime::UNIX_EPOCH);
        let no_payload = pb::GenerateCrlRequest { payload: None };
        for (messages, code, message) in [
            (
                vec![],
                tonic::Code::InvalidArgument,
                "the GenerateCrl stream is empty",
            ),
            (
                vec![crl_entry_message("0a", 1), metadata(0, now)],
                tonic::Code::InvalidArgument,
                "must start with the CRL metadata",
            ),
            (
                vec![no_payload.clone()],
                tonic::Code::InvalidArgument,
                "must start with the CRL metadata",
            ),
            (
                vec![
                    metadata(0, now),
                    crl_entry_message("0a", 1),
                    metadata(1, now),
                ],
                tonic::Code::InvalidArgument,
                "carries the CRL metadata once, first",
            ),
            (
                vec![metadata(0, now), no_payload],
                tonic::Code::InvalidArgument,
                "has no payload",
            ),
            (
                vec![metadata(0, now), crl_entry_message("0a", 2)],
                tonic::Code::InvalidArgument,
                "revocation reason 2",
            ),
            (
                vec![metadata(0, None)],
                tonic::Code::Internal,
                "missing field this_update",
            ),
            (
                vec![metadata(0, now), crl_entry_message("not hex", 1)],
                tonic::Code::Internal,
                "field serial",
            ),
            (
                vec![metadata(99, now)],
                tonic::Code::InvalidArgument,
                "CRL shard 99 is out of range",
            ),
        ] {
            let status = service.crl_response(stream(messages)).await.err().unwrap();
            assert_eq!(status.code(), code, "{status}");
            assert!(
                status.message().contains(message),
                "{message:?} in {status}"
            );
            // The error crosses whole.
            let err = from_status(status);
            if code == tonic::Code::InvalidArgument {
                assert!(
                    matches!(
                        err.kind,
                        ErrorKind::Malformed | ErrorKind::BadRevocationReason
                    ),
                    "{err}"
                );
            }
        }
        assert!(recorder.crls.lock().unwrap().is_empty());

        // A stream that breaks off ends the call with its own status.
        let broken = tokio_stream::iter(vec![
            Ok(metadata(0, now)),
            Err(Status::cancelled("client went away")),
        ]);
        let status = service.crl_response(broken).await.err().unwrap();
        assert_eq!(status.code(), tonic::Code::Cancelled);
        assert!(recorder.crls.lock().unwrap().is_empty());
    }
}
