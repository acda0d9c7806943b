//! Checks and hashes a module zip: `check_zip <file.zip> <module> <version>`.
//! Prints the h1 hash, file count, sizes and throughput (for measuring).

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, module, version] = args.as_slice() else {
        anyhow::bail!("usage: check_zip <file.zip> <module> <version>");
    };
    let path = std::path::Path::new(path);
    let zip_bytes = std::fs::metadata(path)?.len();
    let start = Instant::now();
    let s = athens_proxy::verify::check_zip(path, module, version)?;
    let secs = start.elapsed().as_secs_f64();
    println!("{}", s.h1);
    println!(
        "files={} uncompressed={} zip={} go.mod={} time={:.3}s uncompressed MB/s={:.1} zip MB/s={:.1}",
        s.files,
        s.uncompressed,
        zip_bytes,
        s.go_mod.is_some(),
        secs,
        s.uncompressed as f64 / 1e6 / secs,
        zip_bytes as f64 / 1e6 / secs
    );
    Ok(())
}
