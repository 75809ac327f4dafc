//! `fuzz-seeds DIR`: writes each target's seeds into `DIR/<target>/seed-<n>`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    for target in kassa_fuzz::TARGETS {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for (i, seed) in kassa_fuzz::seeds::seeds(target).into_iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:02}")), seed)?;
        }
    }
    Ok(())
}
