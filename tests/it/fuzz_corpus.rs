//! The fuzz corpus and every input a fuzzer ever crashed on
//! (`fuzz/regressions/TARGET/`), run through the same entry points as the
//! fuzz targets: none may panic. This is the quick form `cargo test` runs;
//! `just fuzz` is the long one.

use std::path::Path;

use tokentally::fuzzing::{TARGETS, run};

#[test]
fn every_saved_input_is_decoded_without_a_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for target in TARGETS {
        for folder in ["corpus", "regressions"] {
            let dir = fuzz.join(folder).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == ".keep") {
                    continue;
                }
                let data = std::fs::read(&path).expect("readable input");
                run(target, &data);
                // Cut and doubled: the shapes fuzzers like to make.
                run(target, &data[..data.len() / 2]);
                run(target, &[data.as_slice(), data.as_slice()].concat());
                inputs += 1;
            }
        }
    }
    assert!(
        inputs >= TARGETS.len(),
        "each target has at least a seed ({inputs} inputs)"
    );
}
