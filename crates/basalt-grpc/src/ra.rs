//! The registration authority over gRPC: [`RaClient`] for the WFE and admin,
//! [`ra_server`] to serve any [`RegistrationAuthority`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use basalt_core::Account;
use basalt_core::AccountId;
use basalt_core::Authz;
use basalt_core::AuthzId;
use basalt_core::ChallengeType;
use basalt_core::Error;
use basalt_core::NewAccount;
use basalt_core::Order;
use basalt_core::OrderId;
use basalt_core::OrderRequest;
use basalt_core::RateLimit;
use basalt_core::RateLimitOverride;
use basalt_core::RegistrationAuthority;
use basalt_core::Requester;
use basalt_core::RevokeRequest;
use basalt_proto::ra as pb;
use basalt_proto::ra::registration_authority_client::RegistrationAuthorityClient;
use basalt_proto::ra::registration_authority_server::RegistrationAuthorityServer;
use basalt_proto::types;
use tonic::Request;

use crate::GrpcChannel;
use crate::not_yet;
use crate::status::GrpcResult;
use crate::status::StatusExt;
use crate::status::empty;
use crate::status::reply;
use crate::status::to_status;

/// Calls the RA.
#[derive(Clone, Debug)]
pub struct RaClient(GrpcChannel);

impl RaClient {
    /// A client over `channel`.
    pub fn new(channel: GrpcChannel) -> Self {
        Self(channel)
    }

    fn client(&self) -> RegistrationAuthorityClient<crate::client::ObservedChannel> {
        RegistrationAuthorityClient::new(self.0.channel.clone())
    }
}

#[async_trait]
impl RegistrationAuthority for RaClient {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        let request = self.0.request(pb::NewAccountRequest {
            key_jwk: account.key_jwk,
            key_thumbprint: account.key_thumbprint,
            contacts: account.contacts,
            eab_key_id: account.eab_key_id.unwrap_or_default(),
            remote_ip: account
                .remote_ip
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
        });
        self.client()
            .new_account(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn new_order(&self, order: OrderRequest) -> Result<Order, Error> {
        let request = self.0.request(pb::NewOrderRequest {
            account_id: order.account_id.0,
            identifiers: basalt_proto::to_vec(order.identifiers),
            profile: order.profile.unwrap_or_default(),
            not_before: basalt_proto::opt_timestamp(order.not_before),
            not_after: basalt_proto::opt_timestamp(order.not_after),
            replaces: order.replaces.map(String::from).unwrap_or_default(),
        });
        self.client()
            .new_order(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn perform_validation(&self, id: AuthzId, kind: ChallengeType) -> Result<Authz, Error> {
        let request = self.0.request(pb::PerformValidationRequest {
            authz_id: id.0,
            challenge_type: kind.as_str().to_owned(),
        });
        self.client()
            .perform_validation(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn finalize_order(&self, id: OrderId, csr_der: Vec<u8>) -> Result<Order, Error> {
        let request = self.0.request(pb::FinalizeOrderRequest {
            order_id: id.0,
            csr: csr_der,
        });
        self.client()
            .finalize_order(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn update_account_contacts(
        &self,
        id: AccountId,
        contacts: Vec<String>,
    ) -> Result<Account, Error> {
        let request = self.0.request(pb::UpdateAccountContactsRequest {
            account_id: id.0,
            contacts,
        });
        self.client()
            .update_account_contacts(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn deactivate_account(&self, id: AccountId) -> Result<Account, Error> {
        let request = self
            .0
            .request(pb::DeactivateAccountRequest { account_id: id.0 });
        self.client()
            .deactivate_account(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn rollover_account_key(
        &self,
        id: AccountId,
        new_key_jwk: String,
        new_key_thumbprint: String,
    ) -> Result<Account, Error> {
        let request = self.0.request(pb::RolloverAccountKeyRequest {
            account_id: id.0,
            new_key_jwk,
            new_key_thumbprint,
        });
        self.client()
            .rollover_account_key(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<Authz, Error> {
        let request = self
            .0
            .request(pb::DeactivateAuthorizationRequest { authz_id: id.0 });
        self.client()
            .deactivate_authorization(request)
            .await
            .map_status()?
            .try_into()
    }

    async fn revoke_certificate(&self, request: RevokeRequest) -> Result<(), Error> {
        let serial = request.serial.to_string();
        let reason = u32::from(request.reason.code());
        match request.requester {
            Requester::Account(account_id) => {
                let request = self.0.request(pb::RevokeByAccountRequest {
                    serial,
                    reason,
                    account_id: account_id.0,
                });
                self.client()
                    .revoke_by_account(request)
                    .await
                    .map_status()?;
            }
            Requester::CertificateKey(spki) => {
                let request = self.0.request(pb::RevokeByCertificateKeyRequest {
                    serial,
                    reason,
                    spki,
                });
                self.client()
                    .revoke_by_certificate_key(request)
                    .await
                    .map_status()?;
            }
            Requester::Operator(admin_name) => {
                let request = self.0.request(pb::AdministrativelyRevokeRequest {
                    serial,
                    reason,
                    admin_name,
                });
                self.client()
                    .administratively_revoke(request)
                    .await
                    .map_status()?;
            }
        }
        Ok(())
    }

    async fn add_rate_limit_override(&self, limit: RateLimitOverride) -> Result<(), Error> {
        let request = self.0.request(override_to_pb(limit));
        self.client()
            .add_rate_limit_override(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn remove_rate_limit_override(&self, limit: &str, key: &str) -> Result<(), Error> {
        let request = self.0.request(pb::RemoveRateLimitOverrideRequest {
            limit: limit.to_owned(),
            bucket_key: key.to_owned(),
        });
        self.client()
            .remove_rate_limit_override(request)
            .await
            .map_status()?;
        Ok(())
    }

    async fn rate_limit_overrides(&self) -> Result<Vec<RateLimitOverride>, Error> {
        let request = self.0.request(types::Empty {});
        let response = self
            .client()
            .list_rate_limit_overrides(request)
            .await
            .map_status()?;
        Ok(response
            .overrides
            .into_iter()
            .map(override_from_pb)
            .collect())
    }
}

/// An override as its message.
fn override_to_pb(limit: RateLimitOverride) -> pb::AddRateLimitOverrideRequest {
    pb::AddRateLimitOverrideRequest {
        limit: limit.limit,
        bucket_key: limit.key,
        count: limit.rate.count,
        period_seconds: limit.rate.period.as_secs(),
        burst: limit.rate.burst,
        comment: limit.comment,
    }
}

/// An override from its message; the RA validates it.
fn override_from_pb(limit: pb::AddRateLimitOverrideRequest) -> RateLimitOverride {
    RateLimitOverride {
        limit: limit.limit,
        key: limit.bucket_key,
        rate: RateLimit {
            count: limit.count,
            period: Duration::from_secs(limit.period_seconds),
            burst: limit.burst,
        },
        comment: limit.comment,
    }
}

/// Serves a [`RegistrationAuthority`] over gRPC.
pub struct RaService<T>(Arc<T>);

#[async_trait]
impl<T: RegistrationAuthority> pb::registration_authority_server::RegistrationAuthority
    for RaService<T>
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
                    remote_ip: request.remote_ip.parse().ok(),
                })
                .await,
        )
    }

    async fn update_account_contacts(
        &self,
        request: Request<pb::UpdateAccountContactsRequest>,
    ) -> GrpcResult<types::Account> {
        let request = request.into_inner();
        reply(
            self.0
                .update_account_contacts(AccountId(request.account_id), request.contacts)
                .await,
        )
    }

    async fn deactivate_account(
        &self,
        request: Request<pb::DeactivateAccountRequest>,
    ) -> GrpcResult<types::Account> {
        let id = AccountId(request.into_inner().account_id);
        reply(self.0.deactivate_account(id).await)
    }

    async fn rollover_account_key(
        &self,
        request: Request<pb::RolloverAccountKeyRequest>,
    ) -> GrpcResult<types::Account> {
        let request = request.into_inner();
        reply(
            self.0
                .rollover_account_key(
                    AccountId(request.account_id),
                    request.new_key_jwk,
                    request.new_key_thumbprint,
                )
                .await,
        )
    }

    async fn new_order(&self, request: Request<pb::NewOrderRequest>) -> GrpcResult<types::Order> {
        let request = request.into_inner();
        let order = (|| {
            Ok::<_, Error>(OrderRequest {
                account_id: AccountId(request.account_id),
                identifiers: basalt_proto::try_vec(request.identifiers)?,
                profile: Some(request.profile).filter(|profile| !profile.is_empty()),
                not_before: basalt_proto::opt_from_timestamp(request.not_before)?,
                not_after: basalt_proto::opt_from_timestamp(request.not_after)?,
                replaces: basalt_proto::opt_serial(&request.replaces)?,
            })
        })()
        .map_err(to_status)?;
        reply(self.0.new_order(order).await)
    }

    async fn perform_validation(
        &self,
        request: Request<pb::PerformValidationRequest>,
    ) -> GrpcResult<types::Authorization> {
        let request = request.into_inner();
        let kind = basalt_proto::parse_field(&request.challenge_type, "challenge_type")
            .map_err(to_status)?;
        reply(
            self.0
                .perform_validation(AuthzId(request.authz_id), kind)
                .await,
        )
    }

    async fn deactivate_authorization(
        &self,
        request: Request<pb::DeactivateAuthorizationRequest>,
    ) -> GrpcResult<types::Authorization> {
        let id = AuthzId(request.into_inner().authz_id);
        reply(self.0.deactivate_authz(id).await)
    }

    async fn finalize_order(
        &self,
        request: Request<pb::FinalizeOrderRequest>,
    ) -> GrpcResult<types::Order> {
        let request = request.into_inner();
        reply(
            self.0
                .finalize_order(OrderId(request.order_id), request.csr)
                .await,
        )
    }

    async fn revoke_by_account(
        &self,
        request: Request<pb::RevokeByAccountRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let revoke = (|| {
            Ok::<_, Error>(RevokeRequest {
                serial: basalt_proto::serial(&request.serial)?,
                reason: basalt_proto::reason(request.reason)?,
                requester: Requester::Account(AccountId(request.account_id)),
            })
        })()
        .map_err(to_status)?;
        empty(self.0.revoke_certificate(revoke).await)
    }

    async fn revoke_by_certificate_key(
        &self,
        request: Request<pb::RevokeByCertificateKeyRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let revoke = (|| {
            Ok::<_, Error>(RevokeRequest {
                serial: basalt_proto::serial(&request.serial)?,
                reason: basalt_proto::reason(request.reason)?,
                requester: Requester::CertificateKey(request.spki),
            })
        })()
        .map_err(to_status)?;
        empty(self.0.revoke_certificate(revoke).await)
    }

    async fn administratively_revoke(
        &self,
        request: Request<pb::AdministrativelyRevokeRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        let revoke = (|| {
            if request.admin_name.trim().is_empty() {
                return Err(Error::malformed(
                    "an administrative revocation must name the operator",
                ));
            }
            Ok::<_, Error>(RevokeRequest {
                serial: basalt_proto::serial(&request.serial)?,
                reason: basalt_proto::reason(request.reason)?,
                requester: Requester::Operator(request.admin_name),
            })
        })()
        .map_err(to_status)?;
        empty(self.0.revoke_certificate(revoke).await)
    }

    async fn block_key(&self, _request: Request<pb::BlockKeyRequest>) -> GrpcResult<types::Empty> {
        Err(not_yet("key blocking"))
    }

    async fn add_rate_limit_override(
        &self,
        request: Request<pb::AddRateLimitOverrideRequest>,
    ) -> GrpcResult<types::Empty> {
        let limit = override_from_pb(request.into_inner());
        empty(self.0.add_rate_limit_override(limit).await)
    }

    async fn remove_rate_limit_override(
        &self,
        request: Request<pb::RemoveRateLimitOverrideRequest>,
    ) -> GrpcResult<types::Empty> {
        let request = request.into_inner();
        empty(
            self.0
                .remove_rate_limit_override(&request.limit, &request.bucket_key)
                .await,
        )
    }

    async fn list_rate_limit_overrides(
        &self,
        _request: Request<types::Empty>,
    ) -> GrpcResult<pb::ListRateLimitOverridesResponse> {
        let overrides = self.0.rate_limit_overrides().await.map_err(to_status)?;
        Ok(tonic::Response::new(pb::ListRateLimitOverridesResponse {
            overrides: overrides.into_iter().map(override_to_pb).collect(),
        }))
    }

    async fn add_eab_key(
        &self,
        _request: Request<pb::AddEabKeyRequest>,
    ) -> GrpcResult<pb::AddEabKeyResponse> {
        Err(not_yet("external account binding"))
    }
}

/// The tonic service for an RA, ready for [`crate::GrpcServer::add_service`].
pub fn ra_server<T: RegistrationAuthority>(
    ra: Arc<T>,
) -> RegistrationAuthorityServer<RaService<T>> {
    RegistrationAuthorityServer::new(RaService(ra))
}
