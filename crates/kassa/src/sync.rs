//! State sync from other nodes (the logic, and why no source is trusted, is
//! [`kassa_node::state_sync::sync_state`]): what `kassa node` runs before it starts following
//! (from peers or APIs), what `kassa audit` runs to start from a snapshot, and what `kassa bench
//! sync` measures (from APIs).

use crate::follower::{HttpSource, SourceAddr};
use anyhow::Result;
use commonware_runtime::{Runner as _, Supervisor as _, tokio as cw_tokio};
use kassa_db::{Db, Head};
use kassa_node::follow::{Certified, Trust};
use kassa_node::state_sync::{self, Progress, Synced};
use kassa_types::Block;

/// A runtime for the blocking callers (before the node's own runtime starts, or none at all).
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Runs `f` (requests to sources) to its end, for a caller without a runtime.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T> {
    Ok(runtime()?.block_on(f))
}

/// Restores into `db` the state of the newest certified height any of `sources` (peers, dialed
/// as `key`, or node API URLs) serves, trusting only `trust`. Runs on a runtime of its own,
/// before the node's starts.
pub fn sync_state(
    db: &Db,
    sources: &[SourceAddr],
    key: kassa_node::consensus::PrivateKey,
    trust: &Trust,
    genesis_block: &Block,
) -> Result<Synced> {
    let runtime = cw_tokio::Config::new()
        .with_worker_threads(1)
        .with_storage_directory(std::env::temp_dir().join("kassa-state-sync"));
    cw_tokio::Runner::new(runtime).start(|context| async move {
        let namespace = kassa_node::host::namespace(&trust.namespace);
        let (sources, _hosts) =
            crate::follower::sources(context.child("sources"), key, namespace, None, sources);
        let mut rng = rand_core_10::UnwrapErr(getrandom::SysRng);
        let mut bar = progress_bar();
        let pause =
            |d| -> futures::future::BoxFuture<'static, ()> { Box::pin(tokio::time::sleep(d)) };
        Ok(state_sync::sync_state(
            db,
            &sources,
            trust,
            genesis_block,
            &mut rng,
            &mut bar,
            &pause,
        )
        .await?)
    })
}

/// Restores the state of `at`, whose commitment a source described as `target`, from `sources`
/// in one attempt: (head, answers, bytes received).
pub fn restore_once(
    db: &Db,
    sources: &[String],
    at: &Certified,
    target: &kassa_db::Committed,
    genesis_block: &Block,
    progress: Progress<'_>,
) -> Result<(Head, u64, u64)> {
    let sources: Vec<_> = sources.iter().map(|s| HttpSource::shared(s)).collect();
    Ok(block_on(state_sync::restore_once(
        db,
        &sources,
        at,
        target,
        genesis_block,
        progress,
    ))??)
}

/// A progress bar on standard error: redrawn in place on a terminal, else a line every tenth.
pub fn progress_bar() -> impl FnMut(u64, u64) + Send {
    use std::io::{IsTerminal as _, Write as _};
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0u64;
    move |done: u64, total: u64| {
        let total = total.max(done).max(1);
        let tenths = done * 10 / total;
        if tty {
            let filled = usize::try_from(done * 30 / total).unwrap_or(30);
            eprint!(
                "\rstate sync: [{}{}] {:>3}% {done} of {total} answers",
                "#".repeat(filled),
                ".".repeat(30 - filled.min(30)),
                done * 100 / total
            );
            if done == total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        } else if tenths > shown || done == total {
            shown = tenths;
            eprintln!(
                "state sync: {}% ({done} of {total} answers)",
                done * 100 / total
            );
        }
    }
}

/// The chain's genesis block, computed from the genesis in memory (what a node that restores a
/// recent state stores as its block 0).
pub(crate) fn genesis_block(genesis: &kassa_state::Genesis) -> Result<kassa_types::Block> {
    let db = kassa_db::Db::scratch()?;
    let app = kassa_node::App::open_db(
        db,
        genesis,
        &kassa_node::consensus::genesis_context(),
        kassa_node::MempoolConfig::default(),
    )?;
    Ok(app.db().block(0)?.expect("genesis committed"))
}
