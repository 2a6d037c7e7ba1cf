use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    return_big_buffers_to_the_system();
    tokentally::cli::run(tokentally::cli::Cli::parse())
}

/// glibc serves allocations below its mmap threshold from arenas (one per
/// thread, up to 8 per core) and keeps freed arena memory; the threshold
/// also rises by itself, up to 32 MiB, as big blocks are freed. After a
/// burst of large ingest bodies (decompressed to up to 64 MiB each, in
/// growing buffers on the blocking threads) the process stayed above 1 GB.
/// A fixed 1 MiB threshold puts every large buffer in its own mapping,
/// handed back to the system when freed; smaller allocations are as before.
fn return_big_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
