//! The `kassa` command: run a node, keep keys, send transactions, query, audit. Thin by design:
//! argument parsing here; the work is in the library crates and the modules below.

mod amount;
mod audit;
mod bench;
mod cli;
mod client;
mod exit;
mod follower;
mod genesis;
mod node;
mod simulate;
mod sync;
mod testnet;
mod wallet;

use clap::{Args, Parser, Subcommand};
use kassa_types::{Rejection, SignedTransaction};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: blocks, transactions and tree nodes are many small,
/// short-lived allocations across threads, where glibc's arenas spent about a fifth of a busy
/// validator's time (measured with `perf`; docs/performance.md). Built without transparent
/// huge pages (`no_thp`): with them, a growing mempool made the kernel zero fresh 2 MiB pages
/// and a saturated node lost a fifth of its throughput.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kassa: a blockchain for mutual-aid societies.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: cli::Common,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node: `--dev` for a single-node development chain, or `--config FILE.toml`.
    Node(NodeArgs),
    /// A local network of validators on loopback.
    #[command(subcommand)]
    Testnet(TestnetCmd),
    /// Keys in the encrypted keystore.
    #[command(subcommand)]
    Keys(cli::KeysCmd),
    /// Sign and send a transaction.
    Tx(Box<cli::TxArgs>),
    /// Read the chain.
    #[command(subcommand)]
    Query(cli::QueryCmd),
    /// A balance, a request or any state value, checked against the genesis validators'
    /// finalization certificate and a Merkle proof, trusting nothing the node says.
    Verify(cli::VerifyArgs),
    /// Development chains: get KAS from the faucet.
    Faucet {
        /// Address or key name.
        who: String,
    },
    /// Replay every block from genesis, recompute every state root and check every invariant:
    /// of a stopped node's `--data-dir`, or else of the running node at `--node URL`.
    Audit {
        /// A stopped node's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The genesis file (default: DATA_DIR/genesis.json).
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Measure throughput, latency, CPU and memory on realistic signed transactions.
    Bench(BenchArgs),
    /// Run a society's rules on a simulated membership for many periods: will approved help be
    /// paid, what does it cost each member, can members who attack the rules gain?
    Simulate(simulate::SimulateArgs),
    /// Print a completion script for a shell, e.g. `kassa completions bash >
    /// /etc/bash_completion.d/kassa`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Decode a signed transaction from hex, check its signature, and print it.
    DecodeTx {
        /// The canonical signed-transaction bytes, hex-encoded.
        hex: String,
    },
}

#[derive(Debug, Args)]
struct NodeArgs {
    /// A single-validator development chain with funded dev accounts and a faucet. Created on
    /// first start, resumed afterwards.
    #[arg(long, conflicts_with = "config")]
    dev: bool,
    /// A node configuration file (TOML): data directory, genesis, validator key, addresses.
    #[arg(long, required_unless_present = "dev")]
    config: Option<PathBuf>,
    /// Where a dev node keeps its data.
    #[arg(long, default_value = ".kassa/dev")]
    data_dir: PathBuf,
    /// HTTP address of the API (dev).
    #[arg(long, default_value = "127.0.0.1:8645")]
    http: SocketAddr,
    /// p2p address (dev).
    #[arg(long, default_value = "127.0.0.1:30645")]
    p2p: SocketAddr,
    /// Host the chain for followers at this address (the hosting protocol; a follower names
    /// this node by the peer address printed at start). Overrides the config file's `[host]`.
    #[arg(long, value_name = "ADDR")]
    host: Option<SocketAddr>,
    /// Block pacing in milliseconds (dev).
    #[arg(long, default_value_t = genesis::default_block_ms())]
    block_ms: u64,
    /// Keep only the newest N heights of blocks, receipts and state history (by default all:
    /// an archive); overrides the config file's `prune_keep`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    prune_keep: Option<u64>,
    /// A follower (`--config` with a bootstrap) whose data directory is empty starts from
    /// the state of the bootstrapper's newest certified height instead of replaying the chain
    /// from genesis (as the config file's `state_sync = true`).
    #[arg(long, requires = "config")]
    state_sync: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Which benchmark: state, curve (state at 1k to 1M accounts), node, network (4
    /// validators), scale, all of these; or attack (a node process under hostile load), or
    /// store (the state store against Commonware's qmdb).
    #[arg(value_enum, default_value = "all")]
    which: bench::Which,
    /// Signed transactions in the measured load (by default enough for about a second of a
    /// saturated node: shorter runs measure mostly the first and last blocks).
    #[arg(long, default_value_t = 50_000)]
    txs: usize,
    /// Accounts signing them (every account is a member of the benchmark's society).
    #[arg(long, default_value_t = 1_000)]
    accounts: usize,
    /// Further accounts funded at genesis, receiving the transfers: a large state, loaded in
    /// one genesis commit (`state` and `node`).
    #[arg(long, value_name = "ACCOUNTS", default_value_t = 0)]
    preload: usize,
    /// The state database's page cache, MiB (`state`, `curve`, `node`, `network`).
    #[arg(long, default_value_t = kassa_db::CACHE_BYTES_DEFAULT >> 20)]
    cache_mib: usize,
    /// Keep only the newest N heights of history, as `kassa node --prune-keep` (`state`,
    /// `node`, `network`); by default an archive.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    prune_keep: Option<u64>,
    /// `curve`: the state sizes to measure, accounts.
    #[arg(long, value_delimiter = ',', default_values_t = bench::DEFAULT_SIZES)]
    sizes: Vec<usize>,
    /// What the load is made of.
    #[arg(long, value_enum, default_value = "mix")]
    mix: bench::Load,
    /// Block pacing of the node and network benchmarks, milliseconds.
    #[arg(long, default_value_t = 100)]
    block_ms: u64,
    /// Offered load of the node and network benchmarks, transactions per second (latency at
    /// that load); 0 submits as fast as the node admits (throughput at saturation).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Submit to the node and network benchmarks over each node's HTTP API, one transaction per
    /// request, from this many client threads (saturating only); 0 submits in-process in
    /// batches.
    #[arg(long, value_name = "CLIENTS", default_value_t = 0)]
    http: usize,
    /// With --http: each request carries this many transactions (`POST /api/v1/txs/batch`)
    /// rather than one.
    #[arg(long, value_name = "TXS", default_value_t = 1, requires = "http")]
    http_batch: usize,
    /// `attack`: seconds of honest load measured under each attack.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// `attack`: honest transfers a second.
    #[arg(long, default_value_t = 200)]
    honest_rate: u64,
    /// `attack`: the file limit (`ulimit -n`) the node runs under.
    #[arg(long, default_value_t = 1_024)]
    file_limit: u64,
    /// `store`: keys in the state.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// `store`: updates of random keys in each batch (a block of 10,000 transactions writes
    /// about 15,000 keys).
    #[arg(long, default_value_t = 15_000)]
    batch: u64,
    /// `store`: batches measured.
    #[arg(long, default_value_t = 10)]
    batches: u64,
    /// `store`: measure this store only, in this process (by default each store runs in a
    /// process of its own).
    #[arg(long, value_enum)]
    engine: Option<bench::Engine>,
    /// Also write the results as JSON to this file (for comparing commits).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TestnetCmd {
    /// Write a new network: genesis, validator keys, one config per validator, a follower's.
    Init(TestnetArgs),
    /// Start every validator as its own process (initializing the network first if needed);
    /// Ctrl-C stops them all.
    Run(TestnetArgs),
}

#[derive(Debug, Args)]
struct TestnetArgs {
    /// How many validators (tolerates f faulty of 3f+1).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Where the network's files and data live.
    #[arg(long, default_value = ".kassa/testnet")]
    dir: PathBuf,
    /// Validator i serves its API on 127.0.0.1:(http-port + i); the follower on the next port.
    #[arg(long, default_value_t = 8650)]
    http_port: u16,
    /// Validator i listens for peers on 127.0.0.1:(p2p-port + i).
    #[arg(long, default_value_t = 30650)]
    p2p_port: u16,
    /// Validator i hosts the chain for followers on 127.0.0.1:(host-port + i); the follower on
    /// the next port.
    #[arg(long, default_value_t = 31650)]
    host_port: u16,
    /// Block pacing in milliseconds.
    #[arg(long, default_value_t = genesis::default_block_ms())]
    block_ms: u64,
}

impl TestnetArgs {
    fn layout(&self) -> testnet::Layout {
        testnet::Layout {
            dir: self.dir.clone(),
            validators: self.validators,
            http_port: self.http_port,
            p2p_port: self.p2p_port,
            host_port: self.host_port,
            block_ms: self.block_ms,
        }
    }
}

fn run_testnet(cmd: TestnetCmd) -> anyhow::Result<()> {
    match cmd {
        TestnetCmd::Init(args) => {
            let layout = args.layout();
            testnet::init(&layout)?;
            println!(
                "kassa testnet: {} validators in {}",
                layout.validators,
                layout.dir.display()
            );
            for i in 0..layout.validators {
                println!("  kassa node --config {}", layout.config(i).display());
            }
            println!(
                "  follower: kassa node --config {}",
                layout.follower_config().display()
            );
            Ok(())
        }
        TestnetCmd::Run(args) => testnet::run(&args.layout()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => run_node(args),
        Command::Testnet(cmd) => run_testnet(cmd),
        Command::Keys(cmd) => cli::keys(cmd, &cli.common),
        Command::Tx(args) => cli::tx(*args, &cli.common),
        Command::Query(cmd) => cli::query(cmd, &cli.common),
        Command::Verify(args) => cli::verify(args, &cli.common),
        Command::Faucet { who } => cli::faucet(&who, &cli.common),
        Command::Audit { data_dir, genesis } => run_audit(data_dir, genesis, &cli.common),
        Command::Bench(a) => {
            if std::env::var_os("KASSA_LOG").is_some() {
                init_logs();
            }
            bench::run(&bench::Options {
                which: a.which,
                txs: a.txs,
                accounts: a.accounts,
                preload: a.preload,
                cache_mib: a.cache_mib,
                prune_keep: a.prune_keep,
                sizes: a.sizes,
                mix: a.mix,
                block_ms: a.block_ms,
                rate: a.rate,
                http_clients: a.http,
                http_batch: a.http_batch,
                json: a.out,
                print_json: cli.common.json,
                attack_secs: a.secs,
                honest_rate: a.honest_rate,
                file_limit: a.file_limit,
                store: bench::StoreOptions {
                    keys: a.keys,
                    batch: a.batch,
                    batches: a.batches,
                    engine: a.engine,
                },
            })
        }
        Command::Simulate(a) => simulate::run(a, cli.common.json),
        Command::DecodeTx { hex } => return decode_tx(&hex, cli.common.json),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "kassa", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code(&e)
        }
    }
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KASSA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,commonware=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    init_logs();
    let mut plan = match &args.config {
        Some(path) => node::config_plan(path)?,
        None => {
            let plan = node::dev_plan(args.data_dir.clone(), args.http, args.p2p, args.block_ms)?;
            println!(
                "kassa node --dev: chain {} in {}",
                plan.genesis.chain_id,
                args.data_dir.display()
            );
            println!(
                "dev accounts (public keys; secret keys are SecretKey::from_label(\"kassa-dev-N\")):"
            );
            for i in 0..genesis::DEV_ACCOUNTS {
                println!("  dev-{i}: {}", genesis::dev_key(i).address());
            }
            plan
        }
    };
    if args.prune_keep.is_some() {
        plan.prune_keep = args.prune_keep;
    }
    if let Some(listen) = args.host {
        let limits = plan
            .host
            .take()
            .map(|h| genesis::HostConfig { listen, ..h });
        plan.host = Some(limits.unwrap_or_else(|| genesis::HostConfig::on(listen)));
    }
    if args.state_sync {
        anyhow::ensure!(
            matches!(plan.role, node::Role::Follower { .. }),
            "--state-sync is for followers: a validator that is behind fetches blocks from its \
             peers"
        );
        plan.state_sync = true;
    }
    node::run(plan)
}

fn run_audit(
    data_dir: Option<PathBuf>,
    genesis: Option<PathBuf>,
    common: &cli::Common,
) -> anyhow::Result<()> {
    let source = match data_dir {
        Some(dir) => audit::Source::DataDir { dir, genesis },
        None => audit::Source::Node(common.node.clone()),
    };
    let s = audit::run(&source, common.json)?;
    let json = serde_json::json!({"ok": true, "from": if s.from == 0 { "genesis".to_string() } else { format!("snapshot of height {}", s.from) }, "from_height": s.from, "blocks": s.blocks, "transactions": s.txs, "state_root": s.state_root.to_string()});
    let from = if s.from == 0 {
        "from genesis".to_string()
    } else {
        format!(
            "from the snapshot of height {} (the state there checked against its block's root and every invariant)",
            s.from
        )
    };
    common.print(&json, || {
        format!(
            "audit passed {from}: {} blocks, {} transactions replayed; every state root matches and every invariant holds; final state root {}",
            s.blocks, s.txs, s.state_root
        )
    });
    Ok(())
}

fn decode_tx(hex_str: &str, json: bool) -> ExitCode {
    let Ok(bytes) = hex::decode(hex_str.trim()) else {
        eprintln!("error: not hex");
        return ExitCode::FAILURE;
    };
    let stx = match SignedTransaction::decode(&bytes) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {} ({e})", Rejection::Malformed);
            return ExitCode::FAILURE;
        }
    };
    let valid = stx.verify_signature();
    if json {
        let v = serde_json::json!({
            "hash": stx.hash().to_string(),
            "chain_id": stx.tx.chain_id.as_str(),
            "signer": stx.tx.signer.to_bech32(),
            "nonce": stx.tx.nonce,
            "fee": stx.tx.fee.to_string(),
            "expiry_height": stx.tx.expiry_height,
            "kind": stx.tx.body.kind(),
            "body": format!("{:?}", stx.tx.body),
            "signature_valid": valid,
        });
        println!("{v:#}");
    } else {
        println!("hash:      {}", stx.hash());
        println!("chain:     {}", stx.tx.chain_id);
        println!("signer:    {}", stx.tx.signer);
        println!("nonce:     {}", stx.tx.nonce);
        println!("fee:       {}", stx.tx.fee);
        println!("expiry:    {}", stx.tx.expiry_height);
        println!("body:      {:?}", stx.tx.body);
        if valid {
            println!("signature: valid");
        } else {
            println!("signature: INVALID ({})", Rejection::BadSignature);
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
