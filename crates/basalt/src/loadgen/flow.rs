//! One order from start to certificate, each step timed: newOrder, then per
//! authorization fetch, challenge and poll (all authorizations at once), then
//! finalize, poll, download and (optionally) revoke.

use std::time::Duration;
use std::time::Instant;

use basalt_acme::Account;
use basalt_acme::AuthorizationStatus;
use basalt_acme::CertificateRequest;
use basalt_acme::ChallengeStatus;
use basalt_acme::Error;
use basalt_acme::Identifier;
use basalt_acme::OrderStatus;
use basalt_acme::pem_certificates;
use tokio::task::JoinSet;

use super::http01::Responder;
use super::stats::Step;

/// The problem type of a finalize that came before the server saw the order
/// `ready` (RFC 8555 §7.4).
const ORDER_NOT_READY: &str = "urn:ietf:params:acme:error:orderNotReady";

/// The steps an order went through, with how long each took.
pub(crate) type StepTimes = Vec<(Step, Duration)>;

/// What one order needs.
pub(crate) struct OrderJob {
    pub(crate) account: Account,
    pub(crate) names: Vec<String>,
    pub(crate) responder: Responder,
    pub(crate) revoke: bool,
}

/// Runs the order; `steps` gets every step that completed, also when a later
/// one fails.
pub(crate) async fn run_order(job: OrderJob, steps: &mut StepTimes) -> Result<(), Error> {
    let OrderJob {
        account,
        names,
        responder,
        revoke,
    } = job;
    let identifiers: Vec<Identifier> = names.iter().map(Identifier::dns).collect();
    let order = timed(steps, Step::NewOrder, account.new_order(&identifiers)).await?;

    // Every authorization at once, as a client that wants its certificate fast does.
    let mut authorizations = JoinSet::new();
    for url in order.authorizations.clone() {
        let account = account.clone();
        let responder = responder.clone();
        authorizations.spawn(async move {
            let mut steps = StepTimes::new();
            let result = authorize(&account, &responder, &url, &mut steps).await;
            (steps, result)
        });
    }
    let mut first_error = None;
    while let Some(joined) = authorizations.join_next().await {
        let (authz_steps, result) = joined
            .map_err(|err| Error::Protocol(format!("an authorization task failed: {err}")))?;
        steps.extend(authz_steps);
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }

    let csr = CertificateRequest::p256(&names)?;
    let finalized = timed(steps, Step::Finalize, async {
        match account.finalize(&order, &csr.der).await {
            // A server that updates the order's state lazily may not have seen
            // it ready yet: wait until it has, then finalize again.
            Err(err) if err.problem().is_some_and(|p| p.kind == ORDER_NOT_READY) => {
                account.poll_order(&order.url, OrderStatus::Ready).await?;
                account.finalize(&order, &csr.der).await
            }
            result => result,
        }
    })
    .await?;
    let order = match finalized.status {
        OrderStatus::Valid => finalized,
        OrderStatus::Invalid => return Err(finalized.failed(&order.url)),
        _ => {
            timed(
                steps,
                Step::PollOrder,
                account.poll_order(&order.url, OrderStatus::Valid),
            )
            .await?
        }
    };
    let certificate_url = order.certificate.ok_or_else(|| {
        Error::Protocol(format!(
            "order {} is valid but has no certificate URL",
            order.url
        ))
    })?;
    let pem = timed(steps, Step::Download, account.certificate(&certificate_url)).await?;
    if revoke {
        let chain = pem_certificates(&pem)?;
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Protocol("an empty certificate chain".to_owned()))?;
        timed(steps, Step::Revoke, account.revoke(leaf, None)).await?;
    }
    Ok(())
}

/// One authorization: fetch it; if pending, serve its http-01 key authorization,
/// tell the server, and poll until it is valid.
async fn authorize(
    account: &Account,
    responder: &Responder,
    url: &str,
    steps: &mut StepTimes,
) -> Result<(), Error> {
    let (authz, _) = timed(steps, Step::Authorization, account.authorization(url)).await?;
    match authz.status {
        AuthorizationStatus::Valid => return Ok(()),
        AuthorizationStatus::Pending => {}
        _ => return Err(authz.failed(url)),
    }
    let challenge = authz.challenge("http-01").ok_or_else(|| {
        Error::Protocol(format!("authorization {url} offers no http-01 challenge"))
    })?;
    let token = challenge
        .token
        .as_deref()
        .ok_or_else(|| Error::Protocol(format!("the http-01 challenge of {url} has no token")))?;
    let _served = responder.serve(token, account.key_authorization(token));
    if challenge.status == ChallengeStatus::Pending {
        timed(steps, Step::Challenge, account.respond(&challenge.url)).await?;
    }
    timed(
        steps,
        Step::PollAuthorization,
        account.poll_authorization(url),
    )
    .await?;
    Ok(())
}

/// Runs `future`, and if it succeeds records how long it took as `step`.
async fn timed<T>(
    steps: &mut StepTimes,
    step: Step,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let start = Instant::now();
    let value = future.await?;
    steps.push((step, start.elapsed()));
    Ok(value)
}
