//! libFuzzer entry of `kassa_fuzz::block`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kassa_fuzz::block::run(data));
