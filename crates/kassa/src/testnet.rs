//! `kassa testnet`: a local network of validators on loopback, for trying Kassa and for tests.
//!
//! `init` writes everything a network needs into one directory: the genesis (the validator set
//! and the funded dev accounts), each validator's key and TOML config (loopback ports, every
//! other validator as a peer, hosting for followers), and a follower's config (the validators'
//! host addresses as its sources; it hosts too). `run` starts one `kassa node --config`
//! process per validator (the same binary and application as a single dev node) and stops them
//! all on Ctrl-C.

use crate::genesis::{self, GenesisFile, HostConfig, NodeConfig, Peer};
use anyhow::{Context as _, Result, bail, ensure};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The chain id of test networks.
pub const TESTNET_CHAIN_ID: &str = "kassa-testnet";
/// At most this many validators on one machine.
pub const MAX_VALIDATORS: usize = 64;

/// Where a test network lives and which ports it uses.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub validators: usize,
    /// Validator i serves HTTP on `http_port + i`; the follower on `http_port + validators`.
    pub http_port: u16,
    /// Validator i listens for peers on `p2p_port + i`.
    pub p2p_port: u16,
    /// Validator i hosts the chain for followers on `host_port + i`; the follower on
    /// `host_port + validators`.
    pub host_port: u16,
    pub block_ms: u64,
}

impl Layout {
    fn name(i: usize) -> String {
        format!("validator-{i}")
    }

    /// The config file of validator `i`.
    pub fn config(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.toml", Self::name(i)))
    }

    /// The follower's config file.
    pub fn follower_config(&self) -> PathBuf {
        self.dir.join("follower.toml")
    }

    fn port(base: u16, i: usize) -> Result<u16> {
        u16::try_from(i)
            .ok()
            .and_then(|i| base.checked_add(i))
            .context("port out of range")
    }

    fn addr(base: u16, i: usize) -> Result<SocketAddr> {
        Ok(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            Self::port(base, i)?,
        )))
    }
}

/// Writes a new network's genesis, keys and configs. Refuses to overwrite an existing one.
pub fn init(layout: &Layout) -> Result<()> {
    let n = layout.validators;
    ensure!(
        (1..=MAX_VALIDATORS).contains(&n),
        "between 1 and {MAX_VALIDATORS} validators"
    );
    let genesis_path = layout.dir.join("genesis.json");
    if genesis_path.exists() {
        bail!(
            "{} already holds a network (delete the directory to start over)",
            layout.dir.display()
        );
    }
    std::fs::create_dir_all(&layout.dir)
        .with_context(|| format!("creating {}", layout.dir.display()))?;
    let seeds: Vec<[u8; 32]> = (0..n)
        .map(|_| kassa_types::SecretKey::generate().seed())
        .collect();
    let mut keys = Vec::new();
    let mut hosts = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        let key = kassa_node::consensus::key_from_seed(*seed).context("validator key")?;
        let public =
            kassa_node::consensus::public_key_bytes(&kassa_node::consensus::public_key(&key));
        keys.push(hex::encode(public));
        hosts.push(kassa_node::host::PeerAddr {
            key: public,
            addr: Layout::addr(layout.host_port, i)?,
        });
    }
    let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let mut g = GenesisFile::dev(now, [0; 32]);
    g.chain_id = TESTNET_CHAIN_ID.into();
    g.validators.clone_from(&keys);
    let peers: Vec<Peer> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Ok(Peer {
                public_key: k.clone(),
                address: Layout::addr(layout.p2p_port, i)?,
            })
        })
        .collect::<Result<_>>()?;
    for (i, seed) in seeds.iter().enumerate() {
        let name = Layout::name(i);
        let key_file = format!("{name}.key");
        genesis::write_seed(&layout.dir.join(&key_file), seed)?;
        let cfg = NodeConfig {
            data_dir: name.clone().into(),
            genesis: "genesis.json".into(),
            validator_key: Some(key_file.into()),
            bootstrap: None,
            http: Layout::addr(layout.http_port, i)?,
            p2p: Some(Layout::addr(layout.p2p_port, i)?),
            block_time_ms: layout.block_ms,
            peers: peers
                .iter()
                .filter(|p| p.public_key != keys[i])
                .cloned()
                .collect(),
            // Each validator's faucet pays from its own dev account, so that their nonces never
            // collide.
            dev_faucet: (i < genesis::DEV_ACCOUNTS).then_some(i),
            api: kassa_api::Limits::default(),
            state_cache_mib: genesis::default_state_cache_mib(),
            prune_keep: None,
            state_sync: false,
            sources: Vec::new(),
            host: Some(HostConfig::on(Layout::addr(layout.host_port, i)?)),
        };
        std::fs::write(layout.config(i), toml::to_string_pretty(&cfg)?)?;
    }
    let follower = NodeConfig {
        data_dir: "follower".into(),
        genesis: "genesis.json".into(),
        validator_key: None,
        bootstrap: Some(hosts[0].to_string()),
        http: Layout::addr(layout.http_port, n)?,
        p2p: None,
        block_time_ms: layout.block_ms,
        peers: Vec::new(),
        dev_faucet: None,
        api: kassa_api::Limits::default(),
        state_cache_mib: genesis::default_state_cache_mib(),
        prune_keep: None,
        state_sync: false,
        // The other validators, should the first stop answering.
        sources: hosts[1..].iter().map(ToString::to_string).collect(),
        host: Some(HostConfig::on(Layout::addr(layout.host_port, n)?)),
    };
    std::fs::write(layout.follower_config(), toml::to_string_pretty(&follower)?)?;
    g.save(&genesis_path)?;
    Ok(())
}

/// Reads back the layout of an initialized network.
fn existing(dir: &Path) -> Result<Vec<NodeConfig>> {
    let g = GenesisFile::load(&dir.join("genesis.json"))?;
    (0..g.validators.len())
        .map(|i| NodeConfig::load(&dir.join(format!("{}.toml", Layout::name(i)))))
        .collect()
}

/// Starts every validator of the network in `layout.dir` (initializing it first if empty) as
/// its own process, prints their API addresses, and stops them all on Ctrl-C.
pub fn run(layout: &Layout) -> Result<()> {
    if !layout.dir.join("genesis.json").exists() {
        init(layout)?;
        println!(
            "kassa testnet: created a {}-validator network in {}",
            layout.validators,
            layout.dir.display()
        );
    }
    let configs = existing(&layout.dir)?;
    ensure!(
        configs.len() == layout.validators,
        "{} holds a network of {} validators, not {}",
        layout.dir.display(),
        configs.len(),
        layout.validators
    );
    let exe = std::env::current_exe().context("locating the kassa binary")?;
    let mut children: Vec<(String, Child)> = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        let name = Layout::name(i);
        let log_path = layout.dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(layout.config(i))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        println!(
            "  {name}: API http://{}/api/v1/status  (pid {}, log {})",
            cfg.http,
            child.id(),
            log_path.display()
        );
        children.push((name, child));
    }
    println!(
        "kassa testnet: {} validators running; Ctrl-C stops them all.",
        children.len()
    );
    println!(
        "  a follower: kassa node --config {}",
        layout.follower_config().display()
    );
    let stop = ctrl_c();
    let mut reported = vec![false; children.len()];
    while stop.try_recv().is_err() {
        for ((name, child), reported) in children.iter_mut().zip(&mut reported) {
            if !*reported && let Ok(Some(status)) = child.try_wait() {
                println!("kassa testnet: {name} exited ({status}); the others keep running");
                *reported = true;
            }
        }
        if reported.iter().all(|r| *r) {
            bail!("every validator has exited");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("kassa testnet: stopping");
    // Ask each validator to stop cleanly (a terminal's Ctrl-C has reached them already); kill
    // whichever has not exited in time (they are crash-safe).
    for (_, child) in &mut children {
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, child) in &mut children {
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if matches!(child.try_wait(), Ok(None)) {
            println!("kassa testnet: killing {name}");
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    Ok(())
}

/// A channel that receives once when the process gets Ctrl-C (SIGINT) or SIGTERM.
fn ctrl_c() -> std::sync::mpsc::Receiver<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
        });
        let _ = tx.send(());
    });
    rx
}
