//! Reads from a replica, writes to the primary.
//!
//! The SA serves `StorageReadOnly` (the WFE's calls) from a read replica when the
//! config names one (`[read_replica]`), so the WFE's polling does not load the primary.
//! A replica lags: a row just written may not be there yet. A read that finds nothing
//! on the replica (or cannot reach it) asks the primary, so a client never sees an
//! account or order it just created as missing; a read that finds a row may show it a
//! moment old (an order still `processing` that just became `valid`), which ACME
//! clients already handle by polling again.

use std::fmt;

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
use basalt_core::ErrorKind;
use basalt_core::Identifier;
use basalt_core::Incident;
use basalt_core::NewAccount;
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
use time::OffsetDateTime;
use tracing::debug;

use crate::SqlStorage;

/// Storage that reads from `replica` first and writes to `primary` only.
#[derive(Clone)]
pub struct ReadSplit {
    replica: SqlStorage,
    primary: SqlStorage,
}

impl fmt::Debug for ReadSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadSplit")
            .field("replica", &self.replica)
            .field("primary", &self.primary)
            .finish()
    }
}

impl ReadSplit {
    /// Reads go to `replica`, falling back to `primary`; writes go to `primary`.
    pub fn new(replica: SqlStorage, primary: SqlStorage) -> Self {
        Self { replica, primary }
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.replica.close().await;
        self.primary.close().await;
    }
}

/// Runs a read on the replica and, when it finds nothing or fails as unavailable, on
/// the primary.
macro_rules! read {
    ($self:ident, $what:literal, $s:ident => $call:expr) => {{
        let $s = &$self.replica;
        match $call {
            Err(err) if err.is(ErrorKind::NotFound) || err.is(ErrorKind::Unavailable) => {
                debug!(read = $what, error = %err, "replica read falls back to the primary");
                let $s = &$self.primary;
                $call
            }
            result => result,
        }
    }};
}

#[async_trait]
impl CertificateLookup for ReadSplit {
    async fn certificate(&self, serial: &Serial) -> Result<CertificateRecord, Error> {
        read!(self, "certificate", s => s.certificate(serial).await)
    }
}

#[async_trait]
impl RevocationLookup for ReadSplit {
    async fn revocation_status(&self, serial: &Serial) -> Result<RevocationStatus, Error> {
        read!(self, "revocation_status", s => s.revocation_status(serial).await)
    }

    /// The replica's answer, as for a revocation status: a revocation it has not
    /// caught up with yet shows in the status-change feed once it has, and the
    /// shard is generated again then.
    async fn revoked_certificates(
        &self,
        issuer_key_hash: &[u8],
        shard: u32,
        expires_after: OffsetDateTime,
    ) -> Result<Vec<RevokedEntry>, Error> {
        read!(self, "revoked_certificates", s => {
            s.revoked_certificates(issuer_key_hash, shard, expires_after).await
        })
    }

    /// The replica's answer: it applies the primary's writes in the order they
    /// committed, so a follower of the feed sees each change once the replica has it,
    /// as it would see a write committing late on the primary.
    async fn status_changes(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<StatusChange>, Error> {
        read!(self, "status_changes", s => s.status_changes(since, limit).await)
    }
}

#[async_trait]
impl StorageReadOnly for ReadSplit {
    async fn account(&self, id: AccountId) -> Result<Account, Error> {
        read!(self, "account", s => s.account(id).await)
    }

    async fn account_by_key(&self, key_thumbprint: &str) -> Result<Account, Error> {
        read!(self, "account_by_key", s => s.account_by_key(key_thumbprint).await)
    }

    async fn order(&self, id: OrderId) -> Result<Order, Error> {
        read!(self, "order", s => s.order(id).await)
    }

    async fn authz(&self, id: AuthzId) -> Result<Authz, Error> {
        read!(self, "authz", s => s.authz(id).await)
    }

    /// The primary's answer: `None` from a lagging replica would wrongly say a
    /// certificate is not replaced yet.
    async fn replacement_order(&self, serial: &Serial) -> Result<Option<OrderId>, Error> {
        self.primary.replacement_order(serial).await
    }

    async fn eab_key(&self, key_id: &str) -> Result<EabKey, Error> {
        read!(self, "eab_key", s => s.eab_key(key_id).await)
    }

    async fn eab_keys(&self) -> Result<Vec<EabKey>, Error> {
        read!(self, "eab_keys", s => s.eab_keys().await)
    }

    async fn orders_for_account(
        &self,
        account_id: AccountId,
        page: PageRequest,
    ) -> Result<OrdersPage, Error> {
        read!(self, "orders_for_account", s => s.orders_for_account(account_id, page.clone()).await)
    }

    /// The primary's answer: `false` from a lagging replica would let a key blocked a
    /// moment ago through.
    async fn key_blocked(&self, spki_sha256: &SpkiHash) -> Result<bool, Error> {
        self.primary.key_blocked(spki_sha256).await
    }

    /// The primary's answer: the order a client asks again for is most often one it
    /// created a moment ago, which a lagging replica does not have yet.
    async fn reusable_order(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        profile: &str,
    ) -> Result<Option<Order>, Error> {
        self.primary
            .reusable_order(account_id, identifiers, profile)
            .await
    }

    /// The primary's answer: an authorization a lagging replica still shows as
    /// reusable may have been deactivated, and the new order naming it would be
    /// refused.
    async fn authzs_for_reuse(
        &self,
        account_id: AccountId,
        identifiers: &[Identifier],
        valid_until_at_least: OffsetDateTime,
    ) -> Result<Vec<Authz>, Error> {
        self.primary
            .authzs_for_reuse(account_id, identifiers, valid_until_at_least)
            .await
    }

    /// The replica's answer: an incident declared a moment ago shows up when the
    /// replica catches up, and ARI clients poll.
    async fn incident_for_serial(&self, serial: &Serial) -> Result<Option<Incident>, Error> {
        read!(self, "incident_for_serial", s => s.incident_for_serial(serial).await)
    }

    async fn incidents(&self) -> Result<Vec<Incident>, Error> {
        read!(self, "incidents", s => s.incidents().await)
    }
}

/// The primary's answer: an operator searches to act (`revoke-key` revokes what it
/// finds), and a certificate a lagging replica does not have yet would escape.
#[async_trait]
impl CertificateSearch for ReadSplit {
    async fn search_certificates(
        &self,
        query: &CertificateQuery,
    ) -> Result<Vec<CertificateSummary>, Error> {
        self.primary.search_certificates(query).await
    }
}

#[async_trait]
impl CertificateStore for ReadSplit {
    async fn add_serial(
        &self,
        serial: &Serial,
        account_id: AccountId,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), Error> {
        self.primary
            .add_serial(serial, account_id, created_at, expires_at)
            .await
    }

    async fn add_precertificate(
        &self,
        serial: &Serial,
        der: &[u8],
        account_id: AccountId,
        issued_at: OffsetDateTime,
        placement: &CrlPlacement,
    ) -> Result<(), Error> {
        self.primary
            .add_precertificate(serial, der, account_id, issued_at, placement)
            .await
    }

    async fn add_certificate(&self, certificate: &CertificateRecord) -> Result<(), Error> {
        self.primary.add_certificate(certificate).await
    }
}

#[async_trait]
impl Storage for ReadSplit {
    async fn new_account(&self, account: NewAccount) -> Result<Account, Error> {
        self.primary.new_account(account).await
    }

    async fn update_account(&self, id: AccountId, update: AccountUpdate) -> Result<Account, Error> {
        self.primary.update_account(id, update).await
    }

    async fn new_order(&self, order: NewOrder) -> Result<Order, Error> {
        self.primary.new_order(order).await
    }

    async fn deactivate_authz(&self, id: AuthzId) -> Result<(), Error> {
        self.primary.deactivate_authz(id).await
    }

    async fn add_eab_key(&self, key: EabKey) -> Result<(), Error> {
        self.primary.add_eab_key(key).await
    }

    async fn revoke_eab_key(&self, key_id: &str) -> Result<(), Error> {
        self.primary.revoke_eab_key(key_id).await
    }

    async fn set_challenge_processing(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        attempt: &str,
    ) -> Result<(), Error> {
        self.primary
            .set_challenge_processing(id, kind, attempt)
            .await
    }

    async fn finalize_authz(
        &self,
        id: AuthzId,
        kind: ChallengeType,
        outcome: AuthzOutcome,
    ) -> Result<(), Error> {
        self.primary.finalize_authz(id, kind, outcome).await
    }

    async fn set_order_processing(&self, id: OrderId, attempt: &str) -> Result<(), Error> {
        self.primary.set_order_processing(id, attempt).await
    }

    async fn finalize_order(&self, id: OrderId, serial: &Serial) -> Result<(), Error> {
        self.primary.finalize_order(id, serial).await
    }

    async fn set_order_error(&self, id: OrderId, error: &Error) -> Result<(), Error> {
        self.primary.set_order_error(id, error).await
    }

    async fn revoke_certificate(
        &self,
        serial: &Serial,
        reason: RevocationReason,
        revoked_at: OffsetDateTime,
    ) -> Result<(), Error> {
        self.primary
            .revoke_certificate(serial, reason, revoked_at)
            .await
    }

    async fn block_key(&self, key: BlockedKey) -> Result<(), Error> {
        self.primary.block_key(key).await
    }

    async fn rerevoke_for_key_compromise(&self, serial: &Serial) -> Result<(), Error> {
        self.primary.rerevoke_for_key_compromise(serial).await
    }

    async fn add_incident(&self, incident: NewIncident) -> Result<Incident, Error> {
        self.primary.add_incident(incident).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use basalt_core::FixedClock;

    use super::*;
    use crate::Engine;
    use crate::conformance::account;
    use crate::conformance::new_order;
    use crate::conformance::placement;
    use crate::conformance::precertificate;
    use crate::conformance::start;
    use crate::testdb::TestDatabase;

    /// Two separate databases stand in for a primary and a replica that has not
    /// caught up: what only the replica holds is read from it, what only the
    /// primary holds is still found, and writes land on the primary.
    #[tokio::test]
    async fn reads_fall_back_to_the_primary_and_writes_go_to_it() {
        let clock = FixedClock::new(start());
        let (primary, _p) = TestDatabase::fresh(Engine::Sqlite, &clock).await;
        let (replica, _r) = TestDatabase::fresh(Engine::Sqlite, &clock).await;
        let on_replica = account(&replica, "replica-only").await;
        let on_primary = account(&primary, "primary-only").await;
        let split = Arc::new(ReadSplit::new(replica.clone(), primary.clone()));

        assert_eq!(
            split.account_by_key("replica-only").await.unwrap(),
            on_replica
        );
        assert_eq!(
            split.account_by_key("primary-only").await.unwrap(),
            on_primary
        );
        assert_eq!(split.account(on_primary.id).await.unwrap(), on_primary);
        assert_eq!(
            split.account_by_key("nowhere").await.unwrap_err().kind,
            ErrorKind::NotFound
        );

        let written = account(split.as_ref(), "written").await;
        assert_eq!(primary.account_by_key("written").await.unwrap(), written);
        assert_eq!(
            replica.account_by_key("written").await.unwrap_err().kind,
            ErrorKind::NotFound
        );

        // The blocked-keys list is read from the primary only: a replica that has
        // not caught up must not let a just-blocked key through.
        let hash = SpkiHash::new([7; 32]);
        split
            .block_key(BlockedKey {
                spki_sha256: hash,
                added_at: start(),
                source: basalt_core::BlockedKeySource::Admin,
                comment: String::new(),
            })
            .await
            .unwrap();
        assert!(primary.key_blocked(&hash).await.unwrap());
        assert!(!replica.key_blocked(&hash).await.unwrap());
        assert!(split.key_blocked(&hash).await.unwrap());

        // A precertificate just stored on the primary already has a status.
        let serial: Serial = "0c0ffee0".parse().unwrap();
        let expires = start() + time::Duration::days(90);
        split
            .add_serial(&serial, written.id, start(), expires)
            .await
            .unwrap();
        split
            .add_precertificate(&serial, b"precert", written.id, start(), &placement())
            .await
            .unwrap();
        let status = split.revocation_status(&serial).await.unwrap();
        assert!(status.precertificate);
        assert_eq!(status.der, b"precert");

        // Reuse reads the primary only: the order a client asks again for was most
        // likely created a moment ago.
        let order = split
            .new_order(new_order(written.id, start()))
            .await
            .unwrap();
        let names = order.identifiers.clone();
        assert_eq!(
            split
                .reusable_order(written.id, &names, &order.profile)
                .await
                .unwrap(),
            Some(order.clone())
        );
        let bases = [Identifier::dns("b.example"), Identifier::dns("a.example")];
        let mut reusable: Vec<AuthzId> = split
            .authzs_for_reuse(written.id, &bases, start())
            .await
            .unwrap()
            .iter()
            .map(|authz| authz.id)
            .collect();
        reusable.sort();
        let mut expected = order.authz_ids.clone();
        expected.sort();
        assert_eq!(reusable, expected);
        // A replica that has not caught up has no incident yet; the primary has it.
        let incident = split
            .add_incident(NewIncident {
                name: "outage".into(),
                url: String::new(),
                serials: vec![serial.clone()],
            })
            .await
            .unwrap();
        assert_eq!(
            primary.incident_for_serial(&serial).await.unwrap(),
            Some(incident.clone())
        );
        assert_eq!(replica.incidents().await.unwrap(), Vec::new());
        // Re-revocation writes to the primary.
        split
            .revoke_certificate(&serial, RevocationReason::Superseded, start())
            .await
            .unwrap();
        split.rerevoke_for_key_compromise(&serial).await.unwrap();
        assert_eq!(
            primary
                .revocation_status(&serial)
                .await
                .unwrap()
                .revocation_reason,
            Some(RevocationReason::KeyCompromise)
        );
        split.close().await;
    }

    /// CRL shards and the status-change feed are read from the replica, like a
    /// revocation status: what only the primary holds yet is not listed.
    #[tokio::test]
    async fn revocation_lists_and_the_status_feed_come_from_the_replica() {
        let clock = FixedClock::new(start());
        let (primary, _p) = TestDatabase::fresh(Engine::Sqlite, &clock).await;
        let (replica, _r) = TestDatabase::fresh(Engine::Sqlite, &clock).await;
        let split = ReadSplit::new(replica.clone(), primary.clone());
        let on_replica: Serial = "0a01".parse().unwrap();
        let on_primary: Serial = "0a02".parse().unwrap();
        let expires = start() + time::Duration::days(90);
        let replica_account = account(&replica, "replica").await;
        let primary_account = account(&primary, "primary").await;
        precertificate(
            &replica,
            replica_account.id,
            &on_replica,
            expires,
            &placement(),
        )
        .await;
        precertificate(
            &primary,
            primary_account.id,
            &on_primary,
            expires,
            &placement(),
        )
        .await;
        for (sa, serial) in [(&replica, &on_replica), (&primary, &on_primary)] {
            sa.revoke_certificate(serial, RevocationReason::Superseded, start())
                .await
                .unwrap();
        }

        let listed = split
            .revoked_certificates(&placement().issuer_key_hash, 0, start())
            .await
            .unwrap();
        let serials: Vec<&Serial> = listed.iter().map(|entry| &entry.serial).collect();
        assert_eq!(serials, [&on_replica]);
        let changes = split.status_changes(start(), 10).await.unwrap();
        let serials: Vec<&Serial> = changes.iter().map(|change| &change.serial).collect();
        assert_eq!(serials, [&on_replica]);
        assert_eq!(
            split.status_changes(start(), 0).await.unwrap_err().kind,
            ErrorKind::Malformed
        );
        split.close().await;
    }
}
