//! libFuzzer entry of `kassa_fuzz::tx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kassa_fuzz::tx::run(data));
