//! The genesis file (JSON) and the node configuration (TOML).

use anyhow::{Context as _, Result, bail};
use kassa_state::Genesis;
use kassa_types::tx::ChainId;
use kassa_types::{Address, SecretKey};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Dev chain id.
pub const DEV_CHAIN_ID: &str = "kassa-dev";
/// How many dev accounts a dev genesis funds.
pub const DEV_ACCOUNTS: usize = 10;
/// KAS (base units) each dev account starts with: one million KAS.
pub const DEV_ACCOUNT_KAS: u64 = 1_000_000 * 1_000_000;
/// KAS (base units) the dev faucet sends per request: 100 KAS.
pub const DEV_FAUCET_KAS: u64 = 100 * 1_000_000;

/// The deterministic key of dev account `i` (`SecretKey::from_label("kassa-dev-{i}")`).
/// Public knowledge: use only on development chains.
pub fn dev_key(i: usize) -> SecretKey {
    SecretKey::from_label(&format!("kassa-dev-{i}"))
}

/// A chain's genesis, as a file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenesisFile {
    pub chain_id: String,
    /// Minimum fee per transaction, KAS base units.
    pub min_fee: u64,
    /// Genesis time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Initial KAS balances.
    pub allocations: Vec<Allocation>,
    /// The validator set, fixed at genesis: consensus public keys (hex).
    pub validators: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Allocation {
    pub address: String,
    /// KAS base units.
    pub amount: u64,
}

impl GenesisFile {
    pub fn load(path: &Path) -> Result<GenesisFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading genesis {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing genesis {}", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The state machine's genesis.
    pub fn to_genesis(&self) -> Result<Genesis> {
        let chain_id =
            ChainId::new(self.chain_id.clone()).context("chain id longer than 32 bytes")?;
        let mut allocations = Vec::new();
        for a in &self.allocations {
            let addr: Address = a
                .address
                .parse()
                .with_context(|| format!("allocation address {}", a.address))?;
            allocations.push((addr, a.amount));
        }
        Ok(Genesis {
            chain_id,
            min_fee: self.min_fee,
            allocations,
            time_ms: self.time_ms,
            validators: self.validator_keys()?,
        })
    }

    /// The validators' public keys (32 bytes each).
    /// Whom a follower or light client of this chain believes: its validators, in its
    /// namespace.
    pub fn trust(&self) -> Result<kassa_node::follow::Trust> {
        let validators = self
            .validator_keys()?
            .into_iter()
            .map(|v| {
                kassa_node::consensus::public_key_from_bytes(v)
                    .context("invalid validator key in genesis")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(kassa_node::follow::Trust {
            validators,
            namespace: kassa_node::consensus::namespace(&self.chain_id),
        })
    }

    pub fn validator_keys(&self) -> Result<Vec<[u8; 32]>> {
        if self.validators.is_empty() {
            bail!("the genesis lists no validators");
        }
        self.validators
            .iter()
            .map(|v| {
                let bytes = hex::decode(v).with_context(|| format!("validator key {v}"))?;
                bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("validator key {v} is not 32 bytes"))
            })
            .collect()
    }

    /// A development genesis: the dev accounts funded, one validator.
    pub fn dev(time_ms: u64, validator: [u8; 32]) -> GenesisFile {
        GenesisFile {
            chain_id: DEV_CHAIN_ID.into(),
            min_fee: 1_000,
            time_ms,
            allocations: (0..DEV_ACCOUNTS)
                .map(|i| Allocation {
                    address: dev_key(i).address().to_bech32(),
                    amount: DEV_ACCOUNT_KAS,
                })
                .collect(),
            validators: vec![hex::encode(validator)],
        }
    }
}

/// A peer validator's address.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Peer {
    /// Consensus public key, hex.
    pub public_key: String,
    /// Where it listens for p2p.
    pub address: SocketAddr,
}

/// `kassa node --config FILE.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the node keeps its state (relative paths are relative to the config file).
    pub data_dir: PathBuf,
    /// The genesis file.
    pub genesis: PathBuf,
    /// The validator key file (hex of 32 secret seed bytes). Without one, the node is a
    /// follower: it syncs finalized blocks from `bootstrap` and validates nothing.
    #[serde(default)]
    pub validator_key: Option<PathBuf>,
    /// A follower's source of finalized blocks: any node of the chain, by its host's peer
    /// address (`<public key hex>@<ip:port>`, the hosting protocol) or its HTTP API
    /// (`http://…`). Every block is checked against its finalization certificate (signed by the
    /// genesis validators) and re-executed, so the bootstrapper is not trusted. Submitted
    /// transactions are forwarded there too.
    #[serde(default)]
    pub bootstrap: Option<String>,
    /// HTTP API and web app.
    pub http: SocketAddr,
    /// p2p listen address (validators).
    #[serde(default)]
    pub p2p: Option<SocketAddr>,
    /// Pacing of block proposals, milliseconds.
    #[serde(default = "default_block_ms")]
    pub block_time_ms: u64,
    /// The other validators' p2p addresses.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Test networks only: run a faucet that pays from dev account N (whose key is public).
    #[serde(default)]
    pub dev_faucet: Option<usize>,
    /// The API's limits: connections, time-outs, per-client rates (each has a default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub api: kassa_api::Limits,
    /// The state database's page cache, MiB: the bound of its memory, whatever the state's
    /// size (more makes reads of a large state faster).
    #[serde(default = "default_state_cache_mib")]
    pub state_cache_mib: usize,
    /// Keep only the newest this many heights of blocks, receipts and state history (absent:
    /// keep all, an archive). Proofs and certificates are served for the heights kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_keep: Option<u64>,
    /// A follower only: on an empty data directory, start from the state of the newest height
    /// the bootstrapper has a finalization certificate for (each chunk checked against that
    /// block's state root) instead of replaying the chain from genesis.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub state_sync: bool,
    /// A follower only: further nodes (validators or followers, as `bootstrap`) to sync from
    /// when the bootstrapper fails or lies, in turn, and to fetch state sync's chunks from; none
    /// is trusted. A follower also asks its peers for the hosts they know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Host the chain for followers over the hosting protocol (validators and followers alike):
    /// where to listen, and the limits on those who connect. Absent: this node does not host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostConfig>,
}

/// `[host]` of a node's config: the hosting protocol's listener and limits (each limit has a
/// default).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Where to listen for followers.
    pub listen: SocketAddr,
    /// Open connections in all.
    #[serde(default = "host_defaults::connections")]
    pub connections: usize,
    /// Open connections from one IP address.
    #[serde(default = "host_defaults::per_ip")]
    pub per_ip: usize,
    /// Seconds a connection may stay without a request.
    #[serde(default = "host_defaults::idle_secs")]
    pub idle_secs: u64,
    /// Requests one IP address may make per second.
    #[serde(default = "host_defaults::requests_per_second")]
    pub requests_per_second: u32,
    /// Transactions one IP address may forward per second.
    #[serde(default = "host_defaults::forward_per_second")]
    pub forward_per_second: u32,
}

mod host_defaults {
    use kassa_node::host::Limits;
    pub fn connections() -> usize {
        Limits::default().connections
    }
    pub fn per_ip() -> usize {
        Limits::default().per_ip
    }
    pub fn idle_secs() -> u64 {
        Limits::default().idle.as_secs()
    }
    pub fn requests_per_second() -> u32 {
        Limits::default().requests_per_second
    }
    pub fn forward_per_second() -> u32 {
        Limits::default().forward_per_second
    }
}

impl HostConfig {
    /// Hosting on `listen` with the default limits.
    pub fn on(listen: SocketAddr) -> HostConfig {
        HostConfig {
            listen,
            connections: host_defaults::connections(),
            per_ip: host_defaults::per_ip(),
            idle_secs: host_defaults::idle_secs(),
            requests_per_second: host_defaults::requests_per_second(),
            forward_per_second: host_defaults::forward_per_second(),
        }
    }

    pub fn limits(&self) -> kassa_node::host::Limits {
        kassa_node::host::Limits {
            connections: self.connections.max(1),
            per_ip: self.per_ip.max(1),
            idle: std::time::Duration::from_secs(self.idle_secs.max(1)),
            requests_per_second: self.requests_per_second.max(1),
            forward_per_second: self.forward_per_second.max(1),
        }
    }
}

pub fn default_state_cache_mib() -> usize {
    kassa_db::CACHE_BYTES_DEFAULT >> 20
}

fn is_default(limits: &kassa_api::Limits) -> bool {
    *limits == kassa_api::Limits::default()
}

pub fn default_block_ms() -> u64 {
    1_000
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut cfg: NodeConfig =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.data_dir, &mut cfg.genesis]
            .into_iter()
            .chain(cfg.validator_key.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if cfg.validator_key.is_some() && cfg.p2p.is_none() {
            bail!("{}: a validator needs a p2p address", path.display());
        }
        if cfg.validator_key.is_none() && cfg.bootstrap.is_none() {
            bail!(
                "{}: a node needs a validator_key (validator) or a bootstrap (follower: a peer \
                 address or a node's URL)",
                path.display()
            );
        }
        Ok(cfg)
    }
}

/// Reads a 32-byte secret seed stored as hex.
pub fn read_seed(path: &Path) -> Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    let bytes = hex::decode(text.trim()).context("the key file is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key file does not hold 32 bytes"))
}

/// Writes a 32-byte secret seed as hex, readable by the owner only.
pub fn write_seed(path: &Path, seed: &[u8; 32]) -> Result<()> {
    write_secret(path, (hex::encode(seed) + "\n").as_bytes())
}

/// Creates `path` (never overwriting) readable by the owner only from the first byte, writes
/// `bytes` and syncs them.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
