//! The keystore: one JSON file per key under the keystore directory, the secret seed encrypted
//! with ChaCha20-Poly1305 under a key derived from a passphrase by Argon2id. Nothing secret is
//! ever written in plaintext; the address is stored in the clear so that keys can be listed
//! without a passphrase.

use anyhow::{Context as _, Result, bail};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use kassa_types::{Address, SecretKey};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Argon2id cost: 64 MiB, 3 passes, 1 lane (OWASP's recommended range).
const M_COST_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;

/// A key file.
#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    name: String,
    address: String,
    kdf: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// The keystore directory.
#[derive(Debug)]
pub struct Keystore {
    dir: PathBuf,
}

fn derive(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32]> {
    let params =
        Params::new(m, t, p, Some(32)).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Keystore {
    /// The keystore in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Keystore {
        Keystore { dir }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        if !valid_name(name) {
            bail!("key names are 1 to 64 characters of letters, digits, '-' and '_'");
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Encrypts and stores `key` as `name`.
    pub fn save(&self, name: &str, key: &SecretKey, passphrase: &str) -> Result<Address> {
        let path = self.path(name)?;
        if path.exists() {
            bail!("a key named {name} already exists");
        }
        if passphrase.is_empty() {
            bail!("the passphrase must not be empty");
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let k = derive(passphrase, &salt, M_COST_KIB, T_COST, P_COST)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&k));
        let address = key.address();
        // The address is bound as associated data: a file whose address was swapped fails to
        // decrypt.
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: &key.seed(),
                    aad: &address.0,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let file = KeyFile {
            version: 1,
            name: name.into(),
            address: address.to_bech32(),
            kdf: "argon2id".into(),
            m_cost_kib: M_COST_KIB,
            t_cost: T_COST,
            p_cost: P_COST,
            salt: hex::encode(salt),
            cipher: "chacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        crate::genesis::write_secret(
            &path,
            (serde_json::to_string_pretty(&file)? + "\n").as_bytes(),
        )?;
        Ok(address)
    }

    fn read(&self, name: &str) -> Result<KeyFile> {
        let path = self.path(name)?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no key named {name} in {}", self.dir.display()))?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// The address of `name` (no passphrase needed).
    pub fn address(&self, name: &str) -> Result<Address> {
        let f = self.read(name)?;
        f.address
            .parse()
            .map_err(|e| anyhow::anyhow!("key file {name}: {e}"))
    }

    /// Decrypts `name`.
    pub fn unlock(&self, name: &str, passphrase: &str) -> Result<SecretKey> {
        let f = self.read(name)?;
        if f.kdf != "argon2id" || f.cipher != "chacha20poly1305" {
            bail!("key file {name} uses an unknown format");
        }
        // A tampered file must not be able to demand unbounded memory or time.
        if f.m_cost_kib > 1024 * 1024 || f.t_cost > 16 || f.p_cost > 8 {
            bail!("key file {name} asks for excessive key-derivation cost");
        }
        let address: Address = f
            .address
            .parse()
            .map_err(|e| anyhow::anyhow!("key file {name}: {e}"))?;
        let salt = hex::decode(&f.salt)?;
        let nonce = hex::decode(&f.nonce)?;
        if nonce.len() != 12 {
            bail!("key file {name} is damaged");
        }
        let k = derive(passphrase, &salt, f.m_cost_kib, f.t_cost, f.p_cost)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&k));
        let seed = cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: &hex::decode(&f.ciphertext)?,
                    aad: &address.0,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("wrong passphrase for {name} (or the file was altered)")
            })?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| anyhow::anyhow!("key file {name} is damaged"))?;
        let key = SecretKey::from_seed(seed);
        if key.address() != address {
            bail!("key file {name} is damaged");
        }
        Ok(key)
    }

    /// Every key: (name, address).
    pub fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for e in entries {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "json")
                && let Ok(f) = serde_json::from_str::<KeyFile>(&std::fs::read_to_string(&path)?)
            {
                out.push((f.name, f.address));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// The default keystore directory: `$KASSA_HOME/keys`, or `~/.kassa/keys`.
pub fn default_dir() -> PathBuf {
    if let Ok(home) = std::env::var("KASSA_HOME") {
        return Path::new(&home).join("keys");
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    Path::new(&home).join(".kassa").join("keys")
}

/// The passphrase: `KASSA_PASSPHRASE` if set (scripts), else asked on the terminal.
pub fn passphrase(prompt: &str, confirm: bool) -> Result<String> {
    if let Ok(p) = std::env::var("KASSA_PASSPHRASE") {
        return Ok(p);
    }
    let p = rpassword::prompt_password(prompt)?;
    if confirm && rpassword::prompt_password("Repeat the passphrase: ")? != p {
        bail!("the passphrases differ");
    }
    if p.len() < 8 {
        bail!("use a passphrase of at least 8 characters");
    }
    Ok(p)
}
