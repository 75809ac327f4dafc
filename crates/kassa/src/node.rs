//! `kassa node`: opens the state, starts consensus on its runtime and the HTTP API on threads of
//! its own, and stops cleanly on Ctrl-C.

use crate::follower::SourceAddr;
use crate::genesis::{self, GenesisFile, HostConfig, NodeConfig, Peer};
use anyhow::{Context as _, Result, bail};
use commonware_runtime::{Runner as _, Spawner as _, Supervisor as _, tokio as cw_tokio};
use kassa_node::consensus::{self, ConsensusConfig};
use kassa_node::follow::{Follower, Trust};
use kassa_node::host::{Book, PeerAddr};
use kassa_node::{App, Faucet, MempoolConfig, Node};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Everything a node needs, from `--dev` flags or a config file.
#[derive(Debug)]
pub struct Plan {
    pub data_dir: PathBuf,
    pub genesis: GenesisFile,
    pub http: SocketAddr,
    pub block_time: Duration,
    pub role: Role,
    pub faucet: Option<Faucet>,
    pub mempool: MempoolConfig,
    /// The API's limits (connections, time-outs, per-client rates).
    pub api: kassa_api::Limits,
    /// The runtime's worker threads ([`WORKER_THREADS`] for a node of its own; fewer when
    /// several validators share a machine's cores, as in `kassa bench network`).
    pub worker_threads: usize,
    /// The state database's page cache, bytes: the bound of its memory.
    pub state_cache_bytes: usize,
    /// Keep only the newest this many heights of blocks, receipts and state history (`None`:
    /// an archive, keeping all).
    pub prune_keep: Option<u64>,
    /// A follower with an empty data directory starts from the state of a recent certified
    /// height, fetched from its sources, instead of replaying the chain from genesis.
    pub state_sync: bool,
    /// Host the chain for followers over the hosting protocol, there and within those limits.
    pub host: Option<HostConfig>,
}

/// Worker threads of a node's runtime, unless its [`Plan`] says otherwise.
pub const WORKER_THREADS: usize = 2;

/// What a node does for its chain.
#[derive(Debug)]
pub enum Role {
    /// Orders and finalizes blocks with the other validators of the genesis.
    Validator {
        seed: [u8; 32],
        p2p: SocketAddr,
        peers: Vec<Peer>,
    },
    /// Syncs finalized blocks from other nodes, peers or APIs (the bootstrapper first, the
    /// others when it fails, and the hosts its peers tell it of), checking each against the
    /// validators' finalization certificates and re-executing it.
    Follower { sources: Vec<SourceAddr> },
}

/// A development node: creates the data directory, a validator key and a dev genesis on first
/// start; resumes from them afterwards.
pub fn dev_plan(
    data_dir: PathBuf,
    http: SocketAddr,
    p2p: SocketAddr,
    block_ms: u64,
) -> Result<Plan> {
    let seed = seed_in(&data_dir, "validator.key")?;
    let key = consensus::key_from_seed(seed).context("invalid validator key")?;
    let genesis_path = data_dir.join("genesis.json");
    let genesis = if genesis_path.exists() {
        GenesisFile::load(&genesis_path)?
    } else {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let g = GenesisFile::dev(
            u64::try_from(now)?,
            consensus::public_key_bytes(&consensus::public_key(&key)),
        );
        g.save(&genesis_path)?;
        g
    };
    Ok(Plan {
        data_dir,
        genesis,
        http,
        block_time: Duration::from_millis(block_ms),
        role: Role::Validator {
            seed,
            p2p,
            peers: Vec::new(),
        },
        faucet: Some(Faucet {
            key: genesis::dev_key(0),
            amount: genesis::DEV_FAUCET_KAS,
        }),
        mempool: MempoolConfig::default(),
        api: kassa_api::Limits::default(),
        worker_threads: WORKER_THREADS,
        state_cache_bytes: kassa_db::CACHE_BYTES_DEFAULT,
        prune_keep: None,
        state_sync: false,
        host: None,
    })
}

/// A node from a config file (a validator of a network).
pub fn config_plan(path: &std::path::Path) -> Result<Plan> {
    let cfg = NodeConfig::load(path)?;
    let role = match (&cfg.validator_key, cfg.p2p, &cfg.bootstrap) {
        (Some(key), Some(p2p), _) => Role::Validator {
            seed: genesis::read_seed(key)?,
            p2p,
            peers: cfg.peers,
        },
        (None, _, Some(bootstrap)) => Role::Follower {
            sources: std::iter::once(bootstrap)
                .chain(&cfg.sources)
                .map(|s| s.parse())
                .collect::<Result<_>>()?,
        },
        _ => bail!(
            "a node needs a validator_key and p2p address, or a bootstrap (a peer address or a \
             node's URL)"
        ),
    };
    if cfg.state_sync && matches!(role, Role::Validator { .. }) {
        bail!(
            "state_sync is for followers: a validator that is behind fetches blocks from its peers"
        );
    }
    Ok(Plan {
        genesis: GenesisFile::load(&cfg.genesis)?,
        data_dir: cfg.data_dir,
        http: cfg.http,
        block_time: Duration::from_millis(cfg.block_time_ms),
        role,
        faucet: cfg.dev_faucet.map(|i| Faucet {
            key: genesis::dev_key(i),
            amount: genesis::DEV_FAUCET_KAS,
        }),
        mempool: MempoolConfig::default(),
        api: cfg.api,
        worker_threads: WORKER_THREADS,
        state_cache_bytes: cfg.state_cache_mib << 20,
        prune_keep: cfg.prune_keep,
        state_sync: cfg.state_sync,
        host: cfg.host,
    })
}

/// The genesis validators with their p2p addresses: this validator's from `p2p`, the others'
/// from the config's peers.
fn validator_addresses(
    genesis: &GenesisFile,
    me: &consensus::PublicKey,
    p2p: SocketAddr,
    peers: &[Peer],
) -> Result<Vec<(consensus::PublicKey, SocketAddr)>> {
    let mut validators = Vec::new();
    for v in genesis.validator_keys()? {
        let pk = consensus::public_key_from_bytes(v).context("invalid validator key in genesis")?;
        let addr = if pk == *me {
            p2p
        } else {
            let hexkey = hex::encode(v);
            peers
                .iter()
                .find(|p| p.public_key == hexkey)
                .map(|p| p.address)
                .with_context(|| {
                    format!("no address for validator {hexkey} in the config's peers")
                })?
        };
        validators.push((pk, addr));
    }
    if !validators.iter().any(|(k, _)| k == me) {
        bail!(
            "this node's key is not a validator of the genesis (a follower's config has a \
             bootstrap and no validator_key)"
        );
    }
    Ok(validators)
}

/// Runs the node until Ctrl-C.
pub fn run(plan: Plan) -> Result<()> {
    run_until(
        plan,
        || async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("kassa node: stopping");
        },
        |_| {},
    )
}

/// Runs the node until `stop()` completes; `started` gets the node once it is serving (the
/// benchmarks drive it in-process).
pub fn run_until<S, F>(
    plan: Plan,
    stop: S,
    started: impl FnOnce(Arc<Node>) + Send + 'static,
) -> Result<()>
where
    S: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    let genesis = plan.genesis.to_genesis()?;
    let namespace = consensus::namespace(&plan.genesis.chain_id);
    let host_namespace = kassa_node::host::namespace(&namespace);
    enum Work {
        Validate(Box<ConsensusConfig>),
        Follow {
            sources: Vec<SourceAddr>,
            trust: Trust,
        },
    }
    // The key this node is known by to its peers in the hosting protocol: a validator's own, a
    // follower's made on its first start.
    let hosting_key;
    let work = match plan.role {
        Role::Validator { seed, p2p, peers } => {
            consensus_storage_mode(&plan.data_dir, plan.prune_keep.is_some())?;
            let key = consensus::key_from_seed(seed).context("invalid validator key")?;
            hosting_key = key.clone();
            let me = consensus::public_key(&key);
            Work::Validate(Box::new(ConsensusConfig {
                validators: validator_addresses(&plan.genesis, &me, p2p, &peers)?,
                key,
                listen: p2p,
                namespace,
                block_time: plan.block_time,
                prune_keep: plan.prune_keep,
            }))
        }
        Role::Follower { sources } => {
            hosting_key = follower_key(&plan.data_dir)?;
            Work::Follow {
                sources,
                trust: plan.genesis.trust()?,
            }
        }
    };
    if let Some(h) = &plan.host {
        // Fail at start, with the address, rather than inside the runtime.
        drop(
            std::net::TcpListener::bind(h.listen)
                .with_context(|| format!("cannot listen for followers on {}", h.listen))?,
        );
    }
    let state_dir = plan.data_dir.join("state");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let db = kassa_db::Db::open_with_cache(&state_dir.join("state.redb"), plan.state_cache_bytes)?
        .keeping(plan.prune_keep);
    let mut restored = None;
    if let Work::Follow { sources, trust } = &work
        && plan.state_sync
        && (db.head()?.is_none() || db.restoring()?.is_some())
    {
        let genesis_block = crate::sync::genesis_block(&genesis)?;
        let started = std::time::Instant::now();
        let synced =
            crate::sync::sync_state(&db, sources, hosting_key.clone(), trust, &genesis_block)?;
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        eprintln!(
            "kassa node: state of height {} restored ({} answers, {} KiB received, certified \
             by {} of {} validators, {} restarts); following from there",
            synced.head.height,
            synced.answers,
            synced.bytes / 1024,
            synced.signers,
            synced.validators,
            synced.restarts
        );
        restored = Some((synced, millis));
    }
    let app = App::open_db(db, &genesis, &consensus::genesis_context(), plan.mempool)?;
    let head = app.head().clone();
    let genesis_json = serde_json::to_string_pretty(&plan.genesis)?;
    let node = Node::with_genesis(app, plan.faucet, Some(genesis_json));
    tracing::info!(chain = %plan.genesis.chain_id, height = head.height, root = %head.state_root, "state opened");

    let runtime = cw_tokio::Config::new()
        .with_worker_threads(plan.worker_threads.max(1))
        .with_storage_directory(plan.data_dir.join("consensus"))
        .with_catch_panics(false);
    let http = plan.http;
    let listener = std::net::TcpListener::bind(http)
        .with_context(|| format!("cannot listen for HTTP on {http}"))?;
    let mut api_limits = plan.api;
    if let Some(h) = &plan.host {
        // The hosting protocol's connections are kept out of the API's descriptors too.
        api_limits.reserved_fds += u64::try_from(h.limits().connections).unwrap_or(u64::MAX);
    }
    let server = kassa_api::Server::start(listener, node.clone(), api_limits)?;
    tracing::info!(connections = server.connections, "API limits");
    cw_tokio::Runner::new(runtime).start(|context| async move {
        // From here `/metrics` is the runtime's registry: Kassa's metrics and Commonware's.
        node.telemetry().attach(context.child("kassa"));
        eprintln!("kassa node: API on http://{http}/api/v1/status");
        started(node.clone());
        let seeds: Vec<PeerAddr> = match &work {
            Work::Follow { sources, .. } => sources
                .iter()
                .filter_map(|s| match s {
                    SourceAddr::Peer(p) => Some(p.clone()),
                    SourceAddr::Http(_) => None,
                })
                .collect(),
            Work::Validate(_) => Vec::new(),
        };
        if let Some(h) = &plan.host {
            let me = PeerAddr {
                key: consensus::public_key_bytes(&consensus::public_key(&hosting_key)),
                addr: h.listen,
            };
            eprintln!("kassa node: hosting the chain for followers as {me}");
            let (node, key, ns) = (node.clone(), hosting_key.clone(), host_namespace.clone());
            let (listen, limits, book) = (h.listen, h.limits(), Arc::new(Book::new(seeds)));
            context.child("host").spawn(move |ctx| async move {
                if let Err(e) =
                    kassa_node::host::serve(ctx, node, key, ns, listen, limits, book).await
                {
                    tracing::error!(error = %e, "hosting stopped");
                }
            });
        }
        let listen_port = plan.host.as_ref().map(|h| h.listen.port());
        let work = async {
            match work {
                Work::Validate(cfg) => {
                    if consensus::run(context.child("consensus"), node, *cfg)
                        .await
                        .is_err()
                    {
                        // A finalized block did not apply (logged): never serve a wrong state.
                        std::process::exit(crate::exit::WRONG_STATE);
                    }
                    tracing::warn!("consensus stopped");
                }
                Work::Follow { sources, trust } => {
                    let names: Vec<String> = sources.iter().map(ToString::to_string).collect();
                    eprintln!("kassa node: following {}", names.join(", "));
                    let (sources, hosts) = crate::follower::sources(
                        context.child("sources"),
                        hosting_key,
                        host_namespace,
                        listen_port,
                        &sources,
                    );
                    let follower = Follower::new(node, trust, sources);
                    if let Some((synced, millis)) = &restored {
                        follower.restored(synced, *millis);
                    }
                    let finder = follower.clone();
                    context
                        .child("discover")
                        .spawn(move |_| hosts.discover(finder));
                    let stopped = follower.run(context.child("follower")).await;
                    // A certified block did not apply: never serve a wrong state.
                    tracing::error!(error = %stopped, "cannot apply a finalized block; stopping");
                    std::process::exit(crate::exit::WRONG_STATE);
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = stop() => {}
        }
        let _ = context.stop(0, Some(Duration::from_secs(5))).await;
    });
    drop(server);
    Ok(())
}

/// A follower's key in the hosting protocol: `node.key` in its data directory, made on first
/// start. It identifies the follower to its peers and nothing more (it holds no money and signs
/// no vote).
fn follower_key(data_dir: &std::path::Path) -> Result<consensus::PrivateKey> {
    consensus::key_from_seed(seed_in(data_dir, "node.key")?).context("invalid node key")
}

/// The secret seed in `data_dir/file`, made (random, mode 0600) on first start.
fn seed_in(data_dir: &std::path::Path, file: &str) -> Result<[u8; 32]> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(file);
    if path.exists() {
        return genesis::read_seed(&path);
    }
    let seed = kassa_types::SecretKey::generate().seed();
    genesis::write_seed(&path, &seed)?;
    Ok(seed)
}

/// A validator's consensus storage is written either whole (an archive) or pruned
/// (`--prune-keep`), in archives of different kinds: a data directory keeps the kind it was
/// started with (`consensus-storage` says which; one written before it existed is whole).
/// Switching would leave marshal with empty archives below a height it has processed.
fn consensus_storage_mode(data_dir: &std::path::Path, pruned: bool) -> Result<()> {
    let marker = data_dir.join("consensus-storage");
    let wanted = if pruned { "pruned" } else { "archive" };
    let found = match std::fs::read_to_string(&marker) {
        Ok(s) => Some(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let used = std::fs::read_dir(data_dir.join("consensus"))
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            used.then(|| "archive".to_string())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", marker.display())),
    };
    match found {
        Some(kind) if kind != wanted => bail!(
            "{} holds a validator's consensus storage written {}: start it {}, or start from an \
             empty data directory (the node syncs the chain from its peers)",
            data_dir.display(),
            if kind == "pruned" {
                "pruned (--prune-keep)"
            } else {
                "whole (an archive)"
            },
            if kind == "pruned" {
                "with --prune-keep"
            } else {
                "without --prune-keep"
            },
        ),
        Some(_) => Ok(()),
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))
        }
    }
}
