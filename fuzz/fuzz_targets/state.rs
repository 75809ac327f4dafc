//! libFuzzer entry of `kassa_fuzz::state`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kassa_fuzz::state::run(data));
