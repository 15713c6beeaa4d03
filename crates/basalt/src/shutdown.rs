//! When a service should stop: SIGINT, SIGTERM, or (under `basalt dev`) its
//! standard input closing because the launcher went away.

use tokio::io::AsyncReadExt;

/// Completes when the process is asked to stop.
pub(crate) async fn signal(stop_on_stdin_eof: bool) {
    let stdin_closed = async {
        if !stop_on_stdin_eof {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        // Anything read is ignored; only end of file (or an error) matters.
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        () = interrupt() => tracing::info!("stopping on signal"),
        () = stdin_closed => tracing::info!("stopping: launcher went away"),
    }
}

/// SIGINT or SIGTERM.
pub(crate) async fn interrupt() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM; only SIGINT stops this process");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
