//! The load generator's http-01 responder (RFC 8555 §8.3): one HTTP server for
//! every worker, answering `/.well-known/acme-challenge/<token>` with the key
//! authorization registered for that token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;

use anyhow::Context;
use axum::Router;
use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// The responder; clones share its tokens.
#[derive(Clone, Debug)]
pub(crate) struct Responder {
    tokens: Tokens,
    local_addr: SocketAddr,
}

/// A token being served; dropping it stops serving the token.
#[derive(Debug)]
pub(crate) struct Served {
    tokens: Tokens,
    token: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        lock(&self.tokens).remove(&self.token);
    }
}

impl Responder {
    /// Listens on `addr` and serves for as long as the runtime runs.
    pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("--http01-listen {addr}: cannot listen"))?;
        let local_addr = listener.local_addr()?;
        let tokens = Tokens::default();
        let router = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(answer))
            .with_state(Arc::clone(&tokens));
        tokio::spawn(async move {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("basalt loadgen: the http-01 responder stopped: {err}");
            }
        });
        Ok(Self { tokens, local_addr })
    }

    /// Where it listens.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `key_authorization` for `token` until the returned guard is dropped.
    pub(crate) fn serve(&self, token: &str, key_authorization: String) -> Served {
        lock(&self.tokens).insert(token.to_owned(), key_authorization);
        Served {
            tokens: Arc::clone(&self.tokens),
            token: token.to_owned(),
        }
    }
}

/// The tokens, whatever a panicking holder left (a map insert or remove cannot
/// be left half done).
fn lock(tokens: &Tokens) -> MutexGuard<'_, HashMap<String, String>> {
    tokens
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn answer(State(tokens): State<Tokens>, Path(token): Path<String>) -> Response {
    match lock(&tokens).get(&token) {
        Some(key_authorization) => (
            [(header::CONTENT_TYPE, "text/plain")],
            key_authorization.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    use super::*;

    /// `GET path` over a fresh connection: the status line and the body.
    async fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response.lines().next().unwrap_or_default().to_owned();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn tokens_are_served_while_their_guard_lives() {
        let responder = Responder::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = responder.local_addr();
        let path = "/.well-known/acme-challenge/tok-1";
        let (status, _) = get(addr, path).await;
        assert!(status.contains(" 404 "), "{status}");

        let served = responder.serve("tok-1", "tok-1.thumb".to_owned());
        let _other = responder.serve("tok-2", "tok-2.thumb".to_owned());
        let (status, body) = get(addr, path).await;
        assert!(status.contains(" 200 "), "{status}");
        assert_eq!(body, "tok-1.thumb");
        let (status, _) = get(addr, "/other/tok-1").await;
        assert!(status.contains(" 404 "), "{status}");

        drop(served);
        let (status, _) = get(addr, path).await;
        assert!(status.contains(" 404 "), "{status}");
        let (_, body) = get(addr, "/.well-known/acme-challenge/tok-2").await;
        assert_eq!(body, "tok-2.thumb");
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error_naming_the_flag() {
        let first = Responder::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let err = Responder::bind(first.local_addr()).await.unwrap_err();
        assert!(err.to_string().contains("--http01-listen"), "{err:#}");
    }
}
