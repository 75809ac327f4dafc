//! libFuzzer entry of `kassa_fuzz::api`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kassa_fuzz::api::run(data));
