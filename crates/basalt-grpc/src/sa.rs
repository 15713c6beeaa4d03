//! The storage authority over gRPC: [`SaClient`] for its callers, [`SaService`] to
//! serve any [`Storage`] implementation that can also search certificates.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::AccountUpdate;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::AuthzOutcome;
use basalt_core::BlockedKey;
use basalt_core::CertificateLookup;
use basalt_core::CertificateQuery;
use basalt_core::CertificateRecord;
use basalt_core::CertificateSearch;
use basalt_core::CertificateStore;
use basalt_core::CertificateSummary;
use basalt_core::ChallengeType;
use basalt_core::CrlPlacement;
use basalt_core::EabKey;
use basalt_core::Error;
use basalt_core::Identifier;
use basalt_core::Incident;
use basalt_core::NewAccount;
use basalt_core::NewAuthz;
use basalt_core::NewIncident;
use basalt_core::NewOrder;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrdersPage;
use basalt_core::PageRequest;
use basalt_core::RevocationLookup;
use basalt_core::RevocationReason;
use basalt_core::RevocationStatus;
use basalt_core::RevokedEntry;
use basalt_core::Serial;
use basalt_core::SpkiHash;
use basalt_core::StatusChange;
use basalt_core::Storage;
use basalt_core::StorageReadOnly;
use basalt_proto::required;
use basalt_proto::required_time;
use basalt_proto::sa as pb;
use basalt_proto::sa::storage_client::StorageClient;
use basalt_proto::sa::storage_read_only_client::StorageReadOnlyClient;
use basalt_proto::timestamp;
use basalt_proto::types;
use time::OffsetDateTime;
use tonic::Request;
use tonic::Status;

use crate::GrpcChannel;
use crate::not_yet;
use crate::status::GrpcResult;
use crate::status::StatusExt;
use crate::status::empty;
use crate::status::from_status;
use crate::status::reply;
use crate::status::to_status;

/// Calls the SA's `StorageReadOnly` and `Storage` services.
#[derive(Clone, Debug)]
pub struct SaClient(GrpcChannel);

impl SaClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self(channel)
    }

    fn reader(&self) -> StorageReadOnlyClient<crate::client::ObservedChannel> {
        StorageReadOnlyClient::new(self.0.channel.clone())
    }

    fn writer(&self) -> StorageClient<crate::client::ObservedChannel> {
        StorageClient::new(self.0.channel.clone())
    }
}

#[async_trait]
impl StorageReadOnly for SaClient {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        let request = self.0.request(pb::GetAccountRequest { id: id.0 });
        self.reader()
            .get_account(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        let request = self.0.request(pb::GetAccountByKeyRequest {
            key_thumbprint: key_thumbprint.to_owned(),
        });
        self.reader()
            .get_account_by_key(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        let request = self.0.request(pb::GetOrderRequest { id: id.0 });
        self.reader()
            .get_order(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        let request = self.0.request(pb::GetAuthorizationRequest { id: id.0 });
        self.reader()
            .get_authorization(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        let request = self.0.request(pb::GetOrdersForAccountRequest {
            account_id: account_id.0,
            page_token: page.cursor.unwrap_or_default(),
            page_size: page.size,
        });
        let response = self
            .reader()
            .get_orders_for_account(request)
            .await
            .map_status()?;
        Ok(OrdersPage {
            order_ids: response.order_ids.into_iter().map(OrderId).collect(),
            next: Some(response.next_page_token).filter(|token| !token.is_empty()),
        })
    }

    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        let request = self.0.request(pb::GetReplacementOrderRequest {
            serial: serial.to_string(),
        });
        let response = self
            .reader()
            .get_replacement_order(request)
            .await
            .map_status()?;
        Ok(Some(response.order_id).filter(|id| *id != 0).map(OrderId))
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        let request = self.0.request(pb::GetEabKeyRequest {
            key_id: key_id.to_owned(),
        });
        eab_from_pb(self.reader().get_eab_key(request).await.map_status()?)
    }

    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        let request = self.0.request(pb::ListEabKeysRequest {});
        let response = self.reader().list_eab_keys(request).await.map_status()?;
        response.keys.into_iter().map(eab_from_pb).collect()
    }

    async fn key_blocked(&self, spki_sha256: &SpkiHash) -> Result<bool, Error> {
        let request = self.0.request(pb::KeyBlockedRequest {
            spki_sha256: spki_sha256.as_bytes().to_vec(),
        });
        let response = self.reader().key_blocked(request).await.map_status()?;
        Ok(response.blocked)
    }

    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error> {
        let request = self.0.request(pb::GetReusableOrderRequest {
            account_id: account_id.0,
            identifiers: basalt_proto::to_vec(identifiers.to_vec()),
            profile: profile.to_owned(),
        });
        let response = self
            .reader()
            .get_reusable_order(request)
            .await
            .map_status()?;
        response.order.map(Order::try_from).transpose()
    }

    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error> {
        let request = self.0.request(pb::GetAuthorizationsForReuseRequest {
            account_id: account_id.0,
            identifiers: basalt_proto::to_vec(identifiers.to_vec()),
            valid_until: Some(timestamp(valid_until_at_least)),
        });
        let response = self
            .reader()
            .get_authorizations_for_reuse(request)
            .await
            .map_status()?;
        basalt_proto::try_vec(response.authorizations)
    }

    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error> {
        let request = self.0.request(pb::GetIncidentForSerialRequest {
            serial: serial.to_string(),
        });
        let response = self
            .reader()
            .get_incident_for_serial(request)
            .await
            .map_status()?;
        response.incident.map(incident_from_pb).transpose()
    }

    async fn incidents(&self) -> Result<Vec<Incident>, Error> {
        let request = self.0.request(pb::ListIncidentsRequest {});
        let response = self.reader().list_incidents(request).await.map_status()?;
        response
            .incidents
            .into_iter()
            .map(incident_from_pb)
            .collect()
    }
}

#[async_trait]
impl CertificateLookup for SaClient {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        let request = self.0.request(pb::GetCertificateRequest {
            serial: serial.to_string(),
        });
        self.reader()
            .get_certificate(request)
            .await
            .map_status()?
            .try_into()
    }
}

#[async_trait]
impl CertificateSearch for SaClient {
    async fn search_certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Vec<CertificateSummary>, Error> {
        let request = self
            .0
            .request(pb::SearchCertificatesRequest::from(query.clone()));
        let response = self
            .reader()
            .search_certificates(request)
            .await
            .map_status()?;
        basalt_proto::try_vec(response.certificates)
    }
}

#[async_trait]
impl RevocationLookup for SaClient {
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error> {
        let request = self.0.request(pb::GetRevocationStatusRequest {
            serial: serial.to_string(),
        });
        let response = self
            .reader()
            .get_revocation_status(request)
            .await
            .map_status()?;
        revocation_status_from_pb(response)
    }

    /// Collects the SA's stream of entries; a stream cut short is an error, never a
    /// shorter list.
    async fn revoked_certificates(
        &self,
        issuer_key_hash: &[u8],
        shard: u32,
        expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        let request = self.0.request(pb::GetRevokedCertificatesRequest {
            issuer_key_hash: issuer_key_hash.to_vec(),
            shard,
            expires_after: Some(timestamp(expires_after)),
        });
        let mut stream = self
            .reader()
            .get_revoked_certificates(request)
            .await
            .map_status()?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.message().await.map_err(from_status)? {
            entries.push(revoked_entry_from_pb(entry)?);
        }
        Ok(entries)
    }

    async fn status_changes(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StatusChange>, Error> {
        let request = self.0.request(pb::GetStatusChangesRequest {
            since: Some(timestamp(since)),
            limit,
        });
        let response = self
            .reader()
            .get_status_changes(request)
            .await
            .map_status()?;
        response
            .changes
            .into_iter()
            .map(status_change_from_pb)
            .collect()
    }
}

fn placement_to_pb(placement: CrlPlacement) -> pb::CrlPlacement {
    pb::CrlPlacement {
        issuer_key_hash: placement.issuer_key_hash,
        shard: placement.shard,
    }
}

fn placement_from_pb(placement: pb::CrlPlacement) -> CrlPlacement {
    CrlPlacement {
        issuer_key_hash: placement.issuer_key_hash,
        shard: placement.shard,
    }
}

fn revoked_entry_to_pb(entry: RevokedEntry) -> pb::RevokedCertificate {
    pb::RevokedCertificate {
        serial: entry.serial.to_string(),
        revoked_at: Some(timestamp(entry.revoked_at)),
        reason: u32::from(entry.reason.code()),
    }
}

fn revoked_entry_from_pb(entry: pb::RevokedCertificate) -> Result<RevokedEntry, Error> {
    Ok(RevokedEntry {
        serial: basalt_proto::serial(&entry.serial)?,
        revoked_at: required_time(entry.revoked_at, "revoked_at")?,
        reason: basalt_proto::reason(entry.reason)?,
    })
}

fn status_change_to_pb(change: StatusChange) -> pb::StatusChange {
    pb::StatusChange {
        serial: change.serial.to_string(),
        status: change.status.as_str().to_owned(),
        changed_at: Some(timestamp(change.changed_at)),
        placement: change.placement.map(placement_to_pb),
    }
}

fn status_change_from_pb(change: pb::StatusChange) -> Result<StatusChange, Error> {
    Ok(StatusChange {
        serial: basalt_proto::serial(&change.serial)?,
        status: basalt_proto::parse_field(&change.status, "status")?,
        changed_at: required_time(change.changed_at, "changed_at")?,
        placement: change.placement.map(placement_from_pb),
    })
}

fn revocation_status_to_pb(status: RevocationStatus) -> pb::GetRevocationStatusResponse {
    pb::GetRevocationStatusResponse {
        serial: status.serial.to_string(),
        der: status.der,
        precertificate: status.precertificate,
        expires_at: Some(timestamp(status.expires_at)),
        status: status.status.as_str().to_owned(),
        revoked_at: basalt_proto::opt_timestamp(status.revoked_at),
        revocation_reason: status
            .revocation_reason
            .map(|reason| u32::from(reason.code())),
    }
}

fn revocation_status_from_pb(
    status: pb::GetRevocationStatusResponse,
) -> Result<RevocationStatus, Error> {
    Ok(RevocationStatus {
        serial: basalt_proto::serial(&status.serial)?,
        der: status.der,
        precertificate: status.precertificate,
        expires_at: required_time(status.expires_at, "expires_at")?,
        status: basalt_proto::parse_field(&status.status, "status")?,
        revoked_at: basalt_proto::opt_from_timestamp(status.revoked_at)?,
        revocation_reason: basalt_proto::opt_reason(status.revocation_reason)?,
    })
}

fn eab_to_pb(key: EabKey) -> pb::EabKey {
    pb::EabKey {
        key_id: key.key_id,
        hmac_key: key.hmac_key,
        comment: key.comment,
        created_at: Some(timestamp(key.created_at)),
        revoked: key.revoked,
        account_id: key.account_id.map(|id| id.0).unwrap_or_default(),
    }
}

fn eab_from_pb(key: pb::EabKey) -> Result<EabKey, Error> {
    Ok(EabKey {
        key_id: key.key_id,
        hmac_key: key.hmac_key,
        comment: key.comment,
        created_at: required_time(key.created_at, "created_at")?,
        revoked: key.revoked,
        account_id: Some(key.account_id).filter(|id| *id != 0).map(AccountId),
    })
}

fn incident_to_pb(incident: Incident) -> pb::Incident {
    pb::Incident {
        id: incident.id,
        name: incident.name,
        url: incident.url,
        created_at: Some(timestamp(incident.created_at)),
        serials: incident.serials,
    }
}

fn incident_from_pb(incident: pb::Incident) -> Result<Incident, Error> {
    Ok(Incident {
        id: incident.id,
        name: incident.name,
        url: incident.url,
        created_at: required_time(incident.created_at, "created_at")?,
        serials: incident.serials,
    })
}

#[async_trait]
impl Storage for SaClient {
    /// The SA does not store `remote_ip`, so it does not travel.
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        let request = self.0.request(pb::NewAccountRequest {
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            eab_key_id: account.eab_key_id.unwrap_or_default(),
        });
        self.writer()
            .new_account(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error> {
        let (key_jwk, key_thumbprint) = update.key.unwrap_or_default();
        let request = self.0.request(pb::UpdateAccountRequest {
            id: id.0,
            set_contacts: update.contacts.is_some(),
            contacts: update.contacts.unwrap_or_default(),
            status: update
                .status
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            key_jwk,
            key_thumbprint,
        });
        self.writer()
            .update_account(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        let request = self
            .0
            .request(pb::DeactivateAuthorizationRequest { authz_id: id.0 });
        self.writer()
            .deactivate_authorization(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        let request = self.0.request(eab_to_pb(key));
        self.writer().add_eab_key(request).await.map_status()?;
        Ok(())
    }

    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        let request = self.0.request(pb::RevokeEabKeyRequest {
            key_id: key_id.to_owned(),
        });
        self.writer().revoke_eab_key(request).await.map_status()?;
        Ok(())
    }

    async fn new_order(&self, order: NewOrder) -> Result<Order, Error> {
        let request = self.0.request(pb::NewOrderRequest {
            account_id: order.account_id.0,
            identifiers: basalt_proto::to_vec(order.identifiers),
            expires: Some(timestamp(order.expires)),
            authorizations: order
                .authzs
                .into_iter()
                .map(|authz| pb::NewAuthorization {
                    identifier: Some(authz.identifier.into()),
                    wildcard: authz.wildcard,
                    expires: Some(timestamp(authz.expires)),
                    challenges: basalt_proto::to_vec(authz.challenges),
                })
                .collect(),
            profile: order.profile,
            not_before: basalt_proto::opt_timestamp(order.not_before),
            not_after: basalt_proto::opt_timestamp(order.not_after),
            replaces: order.replaces.map(String::from).unwrap_or_default(),
            reused_authz_ids: order.reused_authz_ids.iter().map(|id| id.0).collect(),
        });
        self.writer()
            .new_order(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        attempt: &str,
    ) -> Result<(), Error> {
        let request = self.0.request(pb::SetChallengeProcessingRequest {
            authz_id: id.0,
            challenge_type: kind.as_str().to_owned(),
            attempt: attempt.to_owned(),
        });
        self.writer()
            .set_challenge_processing(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        let request = self.0.request(pb::FinalizeAuthorizationRequest {
            authz_id: id.0,
            challenge_type: kind.as_str().to_owned(),
            status: outcome.status.as_str().to_owned(),
            validated_at: Some(timestamp(outcome.validated_at)),
            expires: Some(timestamp(outcome.expires)),
            records: basalt_proto::to_vec(outcome.records),
            error: outcome.error.map(Into::into),
        });
        self.writer()
            .finalize_authorization(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn set_order_processing(&self, id: OrderId, attempt: &str) -> Result<(), Error> {
        let request = self.0.request(pb::SetOrderProcessingRequest {
            order_id: id.0,
            attempt: attempt.to_owned(),
        });
        self.writer()
            .set_order_processing(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        let request = self.0.request(pb::FinalizeOrderRequest {
            order_id: id.0,
            serial: serial.to_string(),
        });
        self.writer().finalize_order(request).await.map_status()?;
        Ok(())
    }

    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        let request = self.0.request(pb::SetOrderErrorRequest {
            order_id: id.0,
            error: Some(error.clone().into()),
        });
        self.writer().set_order_error(request).await.map_status()?;
        Ok(())
    }

    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        let request = self.0.request(pb::RevokeCertificateRequest {
            serial: serial.to_string(),
            reason: u32::from(reason.code()),
            revoked_at: Some(timestamp(revoked_at)),
        });
        self.writer()
            .revoke_certificate(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn block_key(&self, key: BlockedKey) -> Result<(), Error> {
        let request = self.0.request(pb::BlockKeyRequest {
            spki_sha256: key.spki_sha256.as_bytes().to_vec(),
            comment: key.comment,
            added_at: Some(timestamp(key.added_at)),
            source: key.source.as_str().to_owned(),
        });
        self.writer().block_key(request).await.map_status()?;
        Ok(())
    }

    async fn rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error> {
        let request = self.0.request(pb::RerevokeForKeyCompromiseRequest {
            serial: serial.to_string(),
        });
        self.writer()
            .rerevoke_for_key_compromise(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn add_incident(&self, incident: NewIncident) -> Result<Incident, Error> {
        let request = self.0.request(pb::AddIncidentRequest {
            name: incident.name,
            url: incident.url,
            serials: incident.serials.iter().map(ToString::to_string).collect(),
        });
        incident_from_pb(self.writer().add_incident(request).await.map_status()?)
    }
}

#[async_trait]
impl CertificateStore for SaClient {
    async fn add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        let request = self.0.request(pb::AddSerialRequest {
            serial: serial.to_string(),
            account_id: account_id.0,
            created_at: Some(timestamp(created_at)),
            expires_at: Some(timestamp(expires_at)),
        });
        self.writer().add_serial(request).await.map_status()?;
        Ok(())
    }

    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error> {
        let request = self.0.request(pb::AddPrecertificateRequest {
            serial: serial.to_string(),
            der: der.to_vec(),
            account_id: account_id.0,
            issued_at: Some(timestamp(issued_at)),
            placement: Some(placement_to_pb(placement.clone())),
        });
        self.writer()
            .add_precertificate(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        let request = self.0.request(pb::AddCertificateRequest {
            certificate: Some(certificate.clone().into()),
        });
        self.writer().add_certificate(request).await.map_status()?;
        Ok(())
    }
}

/// Serves a [`Storage`] implementation, with its [`CertificateSearch`], as the SA's
/// two gRPC services.
pub struct SaService<T>(Arc<T>);

impl<T> SaService<T> {
    /// Wraps the storage.
    pub fn new(storage: Arc<T>) -> Self {
        Self(storage)
    }
}

impl<T> Clone for SaService<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

fn serial(text: &str) -> Result<Serial, Status> {
    basalt_proto::serial(text).map_err(to_status)
}

#[async_trait]
impl<T: Storage + RevocationLookup + CertificateSearch>
    pb::storage_read_only_server::StorageReadOnly for SaService<T>
{
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> GrpcResult<types::Account> {
        reply(self.0.account(AccountId(request.into_inner().id)).await)
    }

    async fn get_account_by_key(
        &self,
        request: Request<pb::GetAccountByKeyRequest>,
    ) -> GrpcResult<types::Account> {
        reply(
            self.0
                .account_by_key(&request.into_inner().key_thumbprint)
                .await,
        )
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> GrpcResult<types::Order> {
        reply(self.0.order(OrderId(request.into_inner().id)).await)
    }

    async fn get_orders_for_account(
        &self,
        request: Request<pb::GetOrdersForAccountRequest>,
    ) -> GrpcResult<pb::GetOrdersForAccountResponse> {
        let request = request.into_inner();
        let page = PageRequest {
            cursor: Some(request.page_token).filter(|token| !token.is_empty()),
            size: request.page_size,
        };
        let page = self
            .0
            .orders_for_account(AccountId(request.account_id), page)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(pb::GetOrdersForAccountResponse {
            order_ids: page.order_ids.iter().map(|id| id.0).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn get_authorization(
        &self,
        request: Request<pb::GetAuthorizationRequest>,
    ) -> GrpcResult<types::Authorization> {
        reply(self.0.authz(AuthzId(request.into_inner().id)).await)
    }

    async fn get_authorizations_for_reuse(
        &self,
        request: Request<pb::GetAuthorizationsForReuseRequest>,
    ) -> GrpcResult<pb::GetAuthorizationsForReuseResponse> {
        let request = request.into_inner();
        let (identifiers, valid_until) = (|| {
            Ok::<_, Error>((
                basalt_proto::try_vec::<_, Identifier>(request.identifiers)?,
                required_time(request.valid_until, "valid_until")?,
            ))
        })()
        .map_err(to_status)?;
        let authzs = self
            .0
            .authzs_for_reuse(AccountId(request.account_id), &identifiers, valid_until)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(
            pb::GetAuthorizationsForReuseResponse {
                authorizations: basalt_proto::to_vec(authzs),
            },
        ))
    }

    async fn get_reusable_order(
        &self,
        request: Request<pb::GetReusableOrderRequest>,
    ) -> GrpcResult<pb::GetReusableOrderResponse> {
        let request = request.into_inner();
        let identifiers: Vec<Identifier> =
            basalt_proto::try_vec(request.identifiers).map_err(to_status)?;
        let order = self
            .0
            .reusable_order(
                AccountId(request.account_id),
                &identifiers,
                &request.profile,
            )
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(pb::GetReusableOrderResponse {
            order: order.map(Into::into),
        }))
    }

    async fn get_certificate(
        &self,
        request: Request<pb::GetCertificateRequest>,
    ) -> GrpcResult<types::Certificate> {
        let serial = serial(&request.into_inner().serial)?;
        reply(self.0.certificate(&serial).await)
    }

    async fn get_revocation_status(
        &self,
        request: Request<pb::GetRevocationStatusRequest>,
    ) -> GrpcResult<pb::GetRevocationStatusResponse> {
        let serial = serial(&request.into_inner().serial)?;
        let status = self.0.revocation_status(&serial).await.map_err(to_status)?;
        Ok(tonic::Response::new(revocation_status_to_pb(status)))
    }

    async fn get_replacement_order(
        &self,
        request: Request<pb::GetReplacementOrderRequest>,
    ) -> GrpcResult<pb::GetReplacementOrderResponse> {
        let serial = serial(&request.into_inner().serial)?;
        let order = self.0.replacement_order(&serial).await.map_err(to_status)?;
        Ok(tonic::Response::new(pb::GetReplacementOrderResponse {
            order_id: order.map(|id| id.0).unwrap_or_default(),
        }))
    }

    async fn get_eab_key(&self, request: Request<pb::GetEabKeyRequest>) -> GrpcResult<pb::EabKey> {
        let key = self
            .0
            .eab_key(&request.into_inner().key_id)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(eab_to_pb(key)))
    }

    async fn list_eab_keys(
        &self,
        _request: Request<pb::ListEabKeysRequest>,
    ) -> GrpcResult<pb::ListEabKeysResponse> {
        let keys = self.0.eab_keys().await.map_err(to_status)?;
        Ok(tonic::Response::new(pb::ListEabKeysResponse {
            keys: keys.into_iter().map(eab_to_pb).collect(),
        }))
    }

    async fn key_blocked(
        &self,
        request: Request<pb::KeyBlockedRequest>,
    ) -> GrpcResult<pb::KeyBlockedResponse> {
        let hash = SpkiHash::from_slice(&request.into_inner().spki_sha256).map_err(to_status)?;
        let blocked = self.0.key_blocked(&hash).await.map_err(to_status)?;
        Ok(tonic::Response::new(pb::KeyBlockedResponse { blocked }))
    }

    async fn get_ocsp_response(
        &self,
        _request: Request<pb::GetOcspResponseRequest>,
    ) -> GrpcResult<pb::GetOcspResponseResponse> {
        Err(not_yet("stored OCSP responses"))
    }

    type GetRevokedCertificatesStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RevokedCertificate, Status>> + Send>>;

    /// Reads the whole shard before the first entry goes out, so a failed read is
    /// the call's status rather than a stream cut short.
    async fn get_revoked_certificates(
        &self,
        request: Request<pb::GetRevokedCertificatesRequest>,
    ) -> GrpcResult<Self::GetRevokedCertificatesStream> {
        let request = request.into_inner();
        let expires_after =
            required_time(request.expires_after, "expires_after").map_err(to_status)?;
        let entries = self
            .0
            .revoked_certificates(&request.issuer_key_hash, request.shard, expires_after)
            .await
            .map_err(to_status)?;
        let stream = tokio_stream::iter(
            entries
                .into_iter()
                .map(|entry| Ok(revoked_entry_to_pb(entry))),
        );
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    async fn get_status_changes(
        &self,
        request: Request<pb::GetStatusChangesRequest>,
    ) -> GrpcResult<pb::GetStatusChangesResponse> {
        let request = request.into_inner();
        let since = required_time(request.since, "since").map_err(to_status)?;
        let changes = self
            .0
            .status_changes(since, request.limit)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(pb::GetStatusChangesResponse {
            changes: changes.into_iter().map(status_change_to_pb).collect(),
        }))
    }

    async fn get_incident_for_serial(
        &self,
        request: Request<pb::GetIncidentForSerialRequest>,
    ) -> GrpcResult<pb::GetIncidentForSerialResponse> {
        let serial = serial(&request.into_inner().serial)?;
        let incident = self
            .0
            .incident_for_serial(&serial)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(pb::GetIncidentForSerialResponse {
            incident: incident.map(incident_to_pb),
        }))
    }

    async fn list_incidents(
        &self,
        _request: Request<pb::ListIncidentsRequest>,
    ) -> GrpcResult<pb::ListIncidentsResponse> {
        let incidents = self.0.incidents().await.map_err(to_status)?;
        Ok(tonic::Response::new(pb::ListIncidentsResponse {
            incidents: incidents.into_iter().map(incident_to_pb).collect(),
        }))
    }

    async fn search_certificates(
        &self,
        request: Request<pb::SearchCertificatesRequest>,
    ) -> GrpcResult<pb::SearchCertificatesResponse> {
        let query = CertificateQuery::try_from(request.into_inner()).map_err(to_status)?;
        let certificates = self
            .0
            .search_certificates(&query)
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(pb::SearchCertificatesResponse {
            certificates: basalt_proto::to_vec(certificates),
        }))
    }
}

#[async_trait]
impl<T: Storage + RevocationLookup + CertificateSearch> pb::storage_server::Storage
    for SaService<T>
{
    async fn new_account(
        &self,
        request: Request<pb::NewAccountRequest>,
    ) -> GrpcResult<types::Account> {
        let request = request.into_inner();
        reply(
            self.0
                .new_account(NewAccount {
                    key_jwk: request.key_jwk,
                    key_thumbprint: request.key_thumbprint,
                    contacts: request.contacts,
                    eab_key_id: Some(request.eab_key_id).filter(|id| !id.is_empty()),
                    remote_ip: None,
                })
                .await,
        )
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> GrpcResult<types::Account> {
        let request = request.into_inner();
        let status = match request.status.as_str() {
            "" => None,
            status => Some(basalt_proto::parse_field(status, "status").map_err(to_status)?),
        };
        let key = match (
            request.key_jwk.is_empty(),
            request.key_thumbprint.is_empty(),
        ) {
            (true, true) => None,
            (false, false) => Some((request.key_jwk, request.key_thumbprint)),
            _ => {
                return Err(to_status(Error::internal(
                    "key_jwk and key_thumbprint must be set together",
                )));
            }
        };
        let update = AccountUpdate {
            contacts: request.set_contacts.then_some(request.contacts),
            status,
            key,
        };
        reply(self.0.update_account(AccountId(request.id), update).await)
    }

    async fn new_order(&self, request: Request<pb::NewOrderRequest>) -> GrpcResult<types::Order> {
        let order = (|| {
            let request = request.into_inner();
            Ok::<_, Error>(NewOrder {
                account_id: AccountId(request.account_id),
                identifiers: basalt_proto::try_vec(request.identifiers)?,
                expires: required_time(request.expires, "expires")?,
                authzs: request
                    .authorizations
                    .into_iter()
                    .map(|authz| {
                        Ok(NewAuthz {
                            identifier: required(authz.identifier, "identifier")?.try_into()?,
                            wildcard: authz.wildcard,
                            expires: required_time(authz.expires, "expires")?,
                            challenges: basalt_proto::try_vec(authz.challenges)?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
                profile: request.profile,
                not_before: basalt_proto::opt_from_timestamp(request.not_before)?,
                not_after: basalt_proto::opt_from_timestamp(request.not_after)?,
                replaces: basalt_proto::opt_serial(&request.replaces)?,
                reused_authz_ids: request.reused_authz_ids.into_iter().map(AuthzId).collect(),
            })
        })()
        .map_err(to_status)?;
        reply(self.0.new_order(order).await)
    }

    async fn set_challenge_processing(
        &self,
        request: Request<pb::SetChallengeProcessingRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let kind = basalt_proto::parse_field(&request.challenge_type, "challenge_type")
            .map_err(to_status)?;
        empty(
            self.0
                .set_challenge_processing(AuthzId(request.authz_id), kind, &request.attempt)
                .await,
        )
    }

    async fn finalize_authorization(
        &self,
        request: Request<pb::FinalizeAuthorizationRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let parsed = (|| {
            let kind = basalt_proto::parse_field(&request.challenge_type, "challenge_type")?;
            let outcome = AuthzOutcome {
                status: basalt_proto::parse_field(&request.status, "status")?,
                validated_at: required_time(request.validated_at, "validated_at")?,
                expires: required_time(request.expires, "expires")?,
                records: basalt_proto::try_vec(request.records)?,
                error: request.error.map(Error::try_from).transpose()?,
            };
            Ok::<_, Error>((kind, outcome))
        })()
        .map_err(to_status)?;
        let (kind, outcome) = parsed;
        empty(
            self.0
                .finalize_authz(AuthzId(request.authz_id), kind, outcome)
                .await,
        )
    }

    async fn deactivate_authorization(
        &self,
        request: Request<pb::DeactivateAuthorizationRequest>,
    ) -> GrpcResult<types::Empty> {
        empty(
            self.0
                .deactivate_authz(AuthzId(request.into_inner().authz_id))
                .await,
        )
    }

    async fn set_order_processing(
        &self,
        request: Request<pb::SetOrderProcessingRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        empty(
            self.0
                .set_order_processing(OrderId(request.order_id), &request.attempt)
                .await,
        )
    }

    async fn finalize_order(
        &self,
        request: Request<pb::FinalizeOrderRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let serial = serial(&request.serial)?;
        empty(
            self.0
                .finalize_order(OrderId(request.order_id), &serial)
                .await,
        )
    }

    async fn set_order_error(
        &self,
        request: Request<pb::SetOrderErrorRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let error = required(request.error, "error")
            .and_then(Error::try_from)
            .map_err(to_status)?;
        empty(
            self.0
                .set_order_error(OrderId(request.order_id), &error)
                .await,
        )
    }

    async fn add_serial(&self, request: Request<pb::AddSerialRequest>) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let serial = serial(&request.serial)?;
        let created_at = required_time(request.created_at, "created_at").map_err(to_status)?;
        let expires_at = required_time(request.expires_at, "expires_at").map_err(to_status)?;
        empty(
            self.0
                .add_serial(
                    &serial,
                    AccountId(request.account_id),
                    created_at,
                    expires_at,
                )
                .await,
        )
    }

    async fn add_precertificate(
        &self,
        request: Request<pb::AddPrecertificateRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let serial = serial(&request.serial)?;
        let issued_at = required_time(request.issued_at, "issued_at").map_err(to_status)?;
        let placement = required(request.placement, "placement")
            .map(placement_from_pb)
            .map_err(to_status)?;
        empty(
            self.0
                .add_precertificate(
                    &serial,
                    &request.der,
                    AccountId(request.account_id),
                    issued_at,
                    &placement,
                )
                .await,
        )
    }

    async fn add_certificate(
        &self,
        request: Request<pb::AddCertificateRequest>,
    ) -> GrpcResult<types::Empty> {
        let certificate = required(request.into_inner().certificate, "certificate")
            .and_then(CertificateRecord::try_from)
            .map_err(to_status)?;
        empty(self.0.add_certificate(&certificate).await)
    }

    async fn revoke_certificate(
        &self,
        request: Request<pb::RevokeCertificateRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let serial = serial(&request.serial)?;
        let reason = basalt_proto::reason(request.reason).map_err(to_status)?;
        let revoked_at = required_time(request.revoked_at, "revoked_at").map_err(to_status)?;
        empty(self.0.revoke_certificate(&serial, reason, revoked_at).await)
    }

    async fn block_key(&self, request: Request<pb::BlockKeyRequest>) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let key = (|| {
            Ok::<_, Error>(BlockedKey {
                spki_sha256: SpkiHash::from_slice(&request.spki_sha256)?,
                added_at: required_time(request.added_at, "added_at")?,
                source: basalt_proto::parse_field(&request.source, "source")?,
                comment: request.comment,
            })
        })()
        .map_err(to_status)?;
        empty(self.0.block_key(key).await)
    }

    async fn rerevoke_for_key_compromise(
        &self,
        request: Request<pb::RerevokeForKeyCompromiseRequest>,
    ) -> GrpcResult<types::Empty> {
        let serial = serial(&request.into_inner().serial)?;
        empty(self.0.rerevoke_for_key_compromise(&serial).await)
    }

    async fn add_incident(
        &self,
        request: Request<pb::AddIncidentRequest>,
    ) -> GrpcResult<pb::Incident> {
        let request = request.into_inner();
        let serials = request
            .serials
            .iter()
            .map(|text| serial(text))
            .collect::<Result<Vec<_>, Status>>()?;
        let incident = self
            .0
            .add_incident(NewIncident {
                name: request.name,
                url: request.url,
                serials,
            })
            .await
            .map_err(to_status)?;
        Ok(tonic::Response::new(incident_to_pb(incident)))
    }

    async fn store_ocsp_response(
        &self,
        _request: Request<pb::StoreOcspResponseRequest>,
    ) -> GrpcResult<types::Empty> {
        Err(not_yet("stored OCSP responses"))
    }

    async fn lease_crl_shard(
        &self,
        _request: Request<pb::LeaseCrlShardRequest>,
    ) -> GrpcResult<pb::LeaseCrlShardResponse> {
        Err(not_yet("CRL shards"))
    }

    async fn update_crl_shard(
        &self,
        _request: Request<pb::UpdateCrlShardRequest>,
    ) -> GrpcResult<types::Empty> {
        Err(not_yet("CRL shards"))
    }

    async fn add_eab_key(&self, request: Request<pb::EabKey>) -> GrpcResult<types::Empty> {
        let key = eab_from_pb(request.into_inner()).map_err(to_status)?;
        empty(self.0.add_eab_key(key).await)
    }

    async fn revoke_eab_key(
        &self,
        request: Request<pb::RevokeEabKeyRequest>,
    ) -> GrpcResult<types::Empty> {
        empty(self.0.revoke_eab_key(&request.into_inner().key_id).await)
    }
}

/// The tonic services for an SA, ready for [`crate::GrpcServer::add_service`].
pub fn sa_servers<T: Storage + RevocationLookup + CertificateSearch>(
    storage: Arc<T>,
) -> (
    pb::storage_read_only_server::StorageReadOnlyServer<SaService<T>>,
    pb::storage_server::StorageServer<SaService<T>>,
) {
    let service = SaService::new(storage);
    (
        pb::storage_read_only_server::StorageReadOnlyServer::new(service.clone()),
        pb::storage_server::StorageServer::new(service),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_round_trip() {
        let incident = Incident {
            id: 42,
            name: "2030-01-cps-mismatch".into(),
            url: "https://status.example/2030-01".into(),
            created_at: OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap(),
            serials: 3,
        };
        assert_eq!(
            incident_from_pb(incident_to_pb(incident.clone())).unwrap(),
            incident
        );
        let garbled = pb::Incident {
            created_at: None,
            ..incident_to_pb(incident)
        };
        let err = incident_from_pb(garbled).unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Internal);
        assert!(err.detail.contains("created_at"), "{err}");
    }

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_893_456_000 + seconds).unwrap()
    }

    #[test]
    fn placements_round_trip_with_and_without_a_shard() {
        for shard in [Some(0), Some(u32::MAX), None] {
            let placement = CrlPlacement {
                issuer_key_hash: vec![0x00, 0x7f, 0xff, 0x1a],
                shard,
            };
            assert_eq!(
                placement_from_pb(placement_to_pb(placement.clone())),
                placement
            );
        }
    }

    #[test]
    fn revoked_entries_round_trip() {
        for reason in RevocationReason::ALL {
            let entry = RevokedEntry {
                serial: "0a0b0c".parse().unwrap(),
                revoked_at: at(61),
                reason,
            };
            assert_eq!(
                revoked_entry_from_pb(revoked_entry_to_pb(entry.clone())).unwrap(),
                entry
            );
        }
        let entry = revoked_entry_to_pb(RevokedEntry {
            serial: "0a".parse().unwrap(),
            revoked_at: at(0),
            reason: RevocationReason::KeyCompromise,
        });
        let err = revoked_entry_from_pb(pb::RevokedCertificate {
            revoked_at: None,
            ..entry.clone()
        })
        .unwrap_err();
        assert!(err.detail.contains("revoked_at"), "{err}");
        // 2 (cACompromise) is not a reason Basalt revokes for.
        let err = revoked_entry_from_pb(pb::RevokedCertificate {
            reason: 2,
            ..entry.clone()
        })
        .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::BadRevocationReason);
        let err = revoked_entry_from_pb(pb::RevokedCertificate {
            serial: "not hex".into(),
            ..entry
        })
        .unwrap_err();
        assert!(err.detail.contains("serial"), "{err}");
    }

    #[test]
    fn status_changes_round_trip() {
        let placed = StatusChange {
            serial: "0a0b0c".parse().unwrap(),
            status: basalt_core::CertStatus::Revoked,
            changed_at: at(30),
            placement: Some(CrlPlacement {
                issuer_key_hash: vec![0x1a; 20],
                shard: Some(3),
            }),
        };
        let unplaced = StatusChange {
            status: basalt_core::CertStatus::Good,
            placement: None,
            ..placed.clone()
        };
        for change in [placed, unplaced.clone()] {
            assert_eq!(
                status_change_from_pb(status_change_to_pb(change.clone())).unwrap(),
                change
            );
        }
        let sent = status_change_to_pb(unplaced);
        assert_eq!(sent.status, "good");
        let err = status_change_from_pb(pb::StatusChange {
            changed_at: None,
            ..sent.clone()
        })
        .unwrap_err();
        assert!(err.detail.contains("changed_at"), "{err}");
        let err = status_change_from_pb(pb::StatusChange {
            status: "suspended".into(),
            ..sent
        })
        .unwrap_err();
        assert_eq!(err.kind, basalt_core::ErrorKind::Internal);
        assert!(err.detail.contains("status"), "{err}");
    }
}
