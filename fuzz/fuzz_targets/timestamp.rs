#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sigstack_e2e::fuzz::timestamp(data));
