//! The fuzz targets' checks (`fuzz/checks.rs`), replayed on stable Rust on
//! every input kept in `fuzz/regressions/TARGET/` (past crashes and edge
//! cases), so what fuzzing once found stays fixed.

#[path = "../../fuzz/checks.rs"]
mod checks;

type Check = fn(&[u8]);

#[test]
fn fuzz_regressions_replay() {
    let root = crate::util::root().join("fuzz/regressions");
    let targets: [(&str, Check); 4] = [
        ("classify", checks::classify),
        ("fields", checks::fields),
        ("sieve", checks::sieve),
        ("managesieve", checks::managesieve),
    ];
    let mut n = 0;
    for (target, check) in targets {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no inputs in {}", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target}: {} fails its check", f.display());
            n += 1;
        }
    }
    eprintln!("{n} fuzz inputs replayed");
}
