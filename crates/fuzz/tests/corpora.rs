//! Every committed corpus input and every seed, through its target: what a fuzzer once found
//! stays fixed, and the targets still accept what they were built for. Deterministic and bounded
//! (the corpora are minimised; `scripts/fuzz` adds to them).

use std::path::Path;

fn replay(target: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("a corpus file");
        eprintln!("{target}: {}", f.display());
        kassa_fuzz::run(target, &data);
    }
    for seed in kassa_fuzz::seeds::seeds(target) {
        kassa_fuzz::run(target, &seed);
    }
    files.len()
}

#[test]
fn the_transaction_decoder_and_executor_pass_their_whole_corpus() {
    assert!(replay("tx") >= 10);
}

#[test]
fn the_block_decoders_and_certificate_checks_pass_their_whole_corpus() {
    assert!(replay("block") >= 6);
}

#[test]
fn the_api_answers_its_whole_corpus_without_a_server_error() {
    assert!(replay("api") >= 20);
}

#[test]
fn the_hosting_protocol_messages_have_one_encoding_each_over_their_whole_corpus() {
    assert!(replay("host") >= 13);
}

#[test]
fn the_state_machine_keeps_every_invariant_over_its_whole_corpus() {
    assert!(replay("state") >= 8);
}

#[test]
fn the_transaction_seeds_reach_execution_rather_than_being_refused() {
    let start = kassa_fuzz::state::start(0);
    for seed in kassa_fuzz::seeds::seeds("tx") {
        let stx = kassa_types::SignedTransaction::decode(&seed).expect("a seed decodes");
        let mut chain = start.chain.clone();
        let r = chain.block(&[stx]).pop().expect("one result");
        assert!(r.is_ok(), "seed refused: {r:?}");
    }
}

#[test]
fn the_api_seeds_are_mostly_answered_with_success() {
    let seeds = kassa_fuzz::seeds::seeds("api");
    let mut ok = Vec::new();
    for seed in &seeds {
        let (request, status, body) = kassa_fuzz::api::call(seed).expect("a valid request");
        if status.is_success() {
            ok.push(request);
        } else if request == "POST /api/v1/txs" {
            // The node is shared by the tests of this process: the corpus replay may have
            // submitted the same transaction already.
            assert!(body.contains("\"duplicate\""), "{status}: {body}");
        }
    }
    assert!(ok.len() * 2 > seeds.len(), "{ok:?}");
}
