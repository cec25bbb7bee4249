//! Embeds every `migrations/NNNN_*.sql` file, in name order, so the list cannot drift.
use std::{env, fs, path::Path};

fn main() {
    // Read when the script runs, not when it is compiled (`env!`): a build script compiled in
    // one checkout is reused by others sharing the target directory.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../migrations");
    // Relative to this package, not absolute: target directories are shared between checkouts
    // (a clean CI clone reuses the cache), and an absolute path would keep watching the
    // checkout that ran this script first.
    println!("cargo:rerun-if-changed=../migrations");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("migrations/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql") && n.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .collect();
    files.sort();
    let mut out = String::from("/// (version, sql) in apply order.\npub const MIGRATIONS: &[(&str, &str)] = &[\n");
    for f in &files {
        let version = f.trim_end_matches(".sql");
        out.push_str(&format!(
            "    ({version:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../migrations/{f}\"))),\n"
        ));
    }
    out.push_str("];\n");
    fs::write(Path::new(&env::var("OUT_DIR").unwrap()).join("migrations.rs"), out).unwrap();
}
