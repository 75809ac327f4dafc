//! State sync: a node that starts from the state of a recent certified height instead of
//! replaying the chain from genesis.
//!
//! 1. From the first source that answers, the newest finalization certificate and the header
//!    of the block it certifies, checked against the genesis validators (as `kassa verify`
//!    checks them): the header's state root is the only thing believed.
//! 2. The state of that height in chunks ([`kassa_db::Chunk`], `GET /api/v1/snapshots/{h}`),
//!    from the sources in turn; each chunk is checked against the certified root before it is
//!    written ([`kassa_db::Restore`]). A source whose chunk does not check is dropped and the
//!    restore starts over from the others; one that cannot be reached is skipped for that
//!    chunk; a height the sources no longer keep starts over at a newer one.
//! 3. The certified block itself (its hash checked), then the head is committed: the node holds
//!    that height's state, no history below it (as a pruned node), and follows from there.

use crate::cli::verify::{Certified, certified};
use crate::client::Client;
use crate::genesis::GenesisFile;
use anyhow::{Context as _, Result, anyhow, bail};
use kassa_db::{CHUNK_BYTES_MAX, Chunk, Db, Head, Restore, RestoreError};
use kassa_types::Block;
use std::time::Instant;

/// What a state sync did.
#[derive(Debug)]
pub struct Synced {
    pub head: Head,
    /// Entries of the state restored.
    pub entries: u64,
    /// Bytes of chunks received (those of abandoned attempts too).
    pub bytes: u64,
    /// Validators who signed the certificate of the restored height, of how many.
    pub signers: usize,
    pub validators: usize,
    /// Restores started over (a lying source, or a height no longer kept).
    pub restarts: u32,
}

/// How far a sync is: entries restored, and the source's count of the whole state's (not
/// trusted: for a progress bar).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Restores the state of the newest certified height any of `sources` (node API URLs) serves
/// into `db` (empty, or holding an interrupted restore), trusting only `genesis`'s validators;
/// `genesis_block` is the chain's genesis block, computed from the genesis file.
pub fn sync_state(
    db: &Db,
    sources: &[String],
    genesis: &GenesisFile,
    genesis_block: &Block,
    progress: Progress<'_>,
) -> Result<Synced> {
    let mut live: Vec<Client> = sources.iter().map(|s| Client::new(s)).collect();
    let mut bytes = 0u64;
    // Each attempt drops a source or moves to a newer height: bounded by the sources, plus a
    // few heights pruned under a slow restore.
    let attempts = u32::try_from(sources.len() + 4).unwrap_or(u32::MAX);
    for restarts in 0..attempts {
        if live.is_empty() {
            break;
        }
        let at = newest_certified(&live, genesis)?;
        match restore(db, &live, &at, genesis_block, &mut bytes, progress) {
            Ok((head, entries)) => {
                return Ok(Synced {
                    entries,
                    head,
                    bytes,
                    signers: at.signers,
                    validators: at.validators,
                    restarts,
                });
            }
            Err(Failed::Liar(i, e)) => {
                tracing::warn!(source = %live[i].base(), error = %e, "dropping a state sync source");
                eprintln!(
                    "state sync: {} served a state that does not prove: {e}; dropped",
                    live[i].base()
                );
                live.remove(i);
            }
            Err(Failed::Pruned) => {
                eprintln!(
                    "state sync: height {} is no longer kept; starting over at a newer one",
                    at.height
                );
            }
            Err(Failed::Other(e)) => return Err(e),
        }
    }
    bail!("state sync failed: no source served a state that proves against a certified root")
}

/// Restores the state of `at` (a certified block the caller checked) from `sources` into
/// `db` in one attempt, without dropping or retrying sources: (head, entries, bytes received).
/// What `kassa bench sync` measures.
pub(crate) fn restore_once(
    db: &Db,
    sources: &[String],
    at: &Certified,
    genesis_block: &Block,
    progress: Progress<'_>,
) -> Result<(Head, u64, u64)> {
    let clients: Vec<Client> = sources.iter().map(|s| Client::new(s)).collect();
    let mut bytes = 0;
    match restore(db, &clients, at, genesis_block, &mut bytes, progress) {
        Ok((head, entries)) => Ok((head, entries, bytes)),
        Err(Failed::Liar(i, e)) => Err(anyhow!("{}: {e}", sources[i])),
        Err(Failed::Pruned) => Err(anyhow!("height {} is pruned", at.height)),
        Err(Failed::Other(e)) => Err(e),
    }
}

/// Why an attempt stopped.
enum Failed {
    /// Source `i` served something that does not prove.
    Liar(usize, RestoreError),
    /// The sources no longer keep the height.
    Pruned,
    Other(anyhow::Error),
}

/// The newest certified block of the first source that has one.
fn newest_certified(sources: &[Client], genesis: &GenesisFile) -> Result<Certified> {
    let mut last = None;
    for c in sources {
        match certified(c, genesis) {
            Ok(at) => return Ok(at),
            Err(e) => last = Some(e.context(format!("asking {}", c.base()))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("no source")))
}

fn restore(
    db: &Db,
    sources: &[Client],
    at: &Certified,
    genesis_block: &Block,
    bytes: &mut u64,
    progress: Progress<'_>,
) -> Result<(Head, u64), Failed> {
    let started = Instant::now();
    let mut r =
        Restore::begin(db, at.height, at.header.state_root).map_err(|e| Failed::Other(e.into()))?;
    let by = if at.validators > 0 {
        format!(
            "certified by {} of {} validators",
            at.signers, at.validators
        )
    } else {
        "its block linked to a certified one afterwards".to_string()
    };
    eprintln!(
        "state sync: height {} ({by}), state root {}",
        at.height, at.header.state_root
    );
    let mut turn = 0usize;
    // The source that said there is nothing more: if the tree is then incomplete, it lied.
    let ender = loop {
        let mut fetched = None;
        for k in 0..sources.len() {
            let i = (turn + k) % sources.len();
            match chunk(&sources[i], at.height, r.after()) {
                Ok((c, n)) => {
                    *bytes += n;
                    fetched = Some((i, c));
                    break;
                }
                Err(Fetch::Pruned) => return Err(Failed::Pruned),
                Err(Fetch::Bad(e)) => return Err(Failed::Liar(i, e)),
                Err(Fetch::Unreachable(e)) => {
                    tracing::debug!(source = %sources[i].base(), error = %format!("{e:#}"), "chunk not fetched");
                }
            }
        }
        let Some((i, c)) = fetched else {
            return Err(Failed::Other(anyhow!(
                "no source answered for the chunk after {} entries",
                r.entries()
            )));
        };
        turn = i + 1;
        if c.entries.is_empty() {
            break i;
        }
        let total = c.total;
        r.add(c).map_err(|e| Failed::Liar(i, e))?;
        progress(r.entries(), total);
    };
    let block = certified_block(sources, at).map_err(Failed::Other)?;
    let entries = r.entries();
    let head = r.finish(&block, genesis_block).map_err(|e| match e {
        RestoreError::Db(e) => Failed::Other(e.into()),
        e => Failed::Liar(ender, e),
    })?;
    tracing::info!(
        height = head.height,
        entries,
        took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "state restored"
    );
    Ok((head, entries))
}

/// Why a chunk was not fetched.
enum Fetch {
    Unreachable(anyhow::Error),
    Pruned,
    Bad(RestoreError),
}

/// The chunk after `after` at `height`, and its size in bytes.
fn chunk(c: &Client, height: u64, after: Option<[u8; 32]>) -> Result<(Chunk, u64), Fetch> {
    let path = match after {
        None => format!("/api/v1/snapshots/{height}"),
        Some(a) => format!("/api/v1/snapshots/{height}?after={}", hex::encode(a)),
    };
    let limit = u64::try_from(CHUNK_BYTES_MAX).expect("fits");
    let bytes = c.bytes(&path, limit).map_err(|e| {
        if format!("{e:#}").contains("pruned") {
            Fetch::Pruned
        } else {
            Fetch::Unreachable(e)
        }
    })?;
    let n = bytes.len() as u64;
    Ok((Chunk::decode(&bytes).map_err(Fetch::Bad)?, n))
}

/// The block of the certified height, from the first source that serves it whole.
fn certified_block(sources: &[Client], at: &Certified) -> Result<Block> {
    for c in sources {
        let Ok(bytes) = c.block_bytes(at.height) else {
            continue;
        };
        match Block::decode(&bytes) {
            Ok(b) if b.header.hash() == at.header.hash() => return Ok(b),
            _ => {
                tracing::warn!(source = %c.base(), height = at.height, "a block that is not the certified one")
            }
        }
    }
    Err(anyhow!("no source served block {}", at.height)).context("state sync")
}

/// A progress bar on standard error: redrawn in place on a terminal, else a line every tenth.
pub fn progress_bar() -> impl FnMut(u64, u64) {
    use std::io::{IsTerminal as _, Write as _};
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0u64;
    move |done: u64, total: u64| {
        let total = total.max(done).max(1);
        let tenths = done * 10 / total;
        if tty {
            let filled = usize::try_from(done * 30 / total).unwrap_or(30);
            eprint!(
                "\rstate sync: [{}{}] {:>3}% {done} of {total} entries",
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
                "state sync: {}% ({done} of {total} entries)",
                done * 100 / total
            );
        }
    }
}

/// The chain's genesis block, computed from the genesis in memory (what a node that restores a
/// recent state stores as its block 0).
pub(crate) fn genesis_block(genesis: &kassa_state::Genesis) -> Result<kassa_types::Block> {
    let db = kassa_db::Db::open_on(kassa_db::disk::SimDisk::new())?;
    let app = kassa_node::App::open_db(
        db,
        genesis,
        &kassa_node::consensus::genesis_context(),
        kassa_node::MempoolConfig::default(),
    )?;
    Ok(app.db().block(0)?.expect("genesis committed"))
}
