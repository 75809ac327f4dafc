//! The `kassa` command. For now it offers offline tools only; `kassa node`, the wallet and
//! `kassa audit` arrive with Part 2 (see README.md). Thin by design: parsing here, logic in the
//! library crates.

use clap::{Parser, Subcommand};
use kassa_types::{Rejection, SignedTransaction};
use std::process::ExitCode;

/// Kassa: a blockchain for mutual-aid societies.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode a signed transaction from hex, check its signature, and print it.
    DecodeTx {
        /// The canonical signed-transaction bytes, hex-encoded.
        hex: String,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::DecodeTx { hex } => decode_tx(&hex),
    }
}

fn decode_tx(hex_str: &str) -> ExitCode {
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
    println!("hash:      {}", stx.hash());
    println!("chain:     {}", stx.tx.chain_id);
    println!("signer:    {}", stx.tx.signer);
    println!("nonce:     {}", stx.tx.nonce);
    println!("fee:       {}", stx.tx.fee);
    println!("expiry:    {}", stx.tx.expiry_height);
    println!("body:      {:?}", stx.tx.body);
    if stx.verify_signature() {
        println!("signature: valid");
        ExitCode::SUCCESS
    } else {
        println!("signature: INVALID ({})", Rejection::BadSignature);
        ExitCode::FAILURE
    }
}
