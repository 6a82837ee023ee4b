//! The daemon's HTTP side: `/metrics` (Prometheus text format), `/healthz` (the process is alive) and
//! `/readyz` (configuration loaded and every target swept recently enough). Everything else is 404.
//! Handlers only read shared state, so a scrape never waits for a sweep.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Says whether the daemon is ready, and if not, why.
pub type ReadyCheck = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    ready: ReadyCheck,
}

/// The router, separate from the listener so tests can drive it.
fn router(metrics: Metrics, ready: ReadyCheck) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, ready })
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    match (s.ready)() {
        Ok(msg) => (StatusCode::OK, format!("ready: {msg}\n")),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Serves until `cancel` fires, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    ready: ReadyCheck,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, ready))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}
