//! libFuzzer entry of `kassa_fuzz::host`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kassa_fuzz::host::run(data));
