//! The bulk-replay runner: takes the running jobs (`manage::replay`) one
//! page at a time through the writer (`ingest::bulk::replay_page`) until
//! each is done. On start it picks up a job a restart interrupted, from
//! the cursor its last committed page left.

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::ingest::bulk;
use crate::store::StoreError;
use crate::util::clock::now_ms;

/// Run jobs until the store closes.
pub async fn run(app: Arc<App>) {
    let mut current: Option<u64> = None;
    loop {
        if current.is_none() {
            current = match app.store.read(bulk::first_running).await {
                Ok(j) => j,
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read replay jobs; will retry");
                    None
                }
            };
        }
        let Some(id) = current else {
            tokio::select! {
                () = app.replay_wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        };
        let limits = app.limits;
        match app
            .store
            .write(move |ctx| bulk::replay_page(ctx, id, &limits, now_ms()))
            .await
        {
            Ok(Some(job)) if job.state == bulk::RUNNING => {}
            Ok(Some(job)) => {
                tracing::info!(job = id, state = %job.state, scanned = job.scanned, replayed = job.replayed, "replay job finished");
                current = None;
            }
            Ok(None) => current = None,
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, job = id, "replay page failed; will retry");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        // Let the handlers' writes into the writer between pages.
        tokio::task::yield_now().await;
    }
}
