#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tokentally::fuzzing::run("litellm", data));
