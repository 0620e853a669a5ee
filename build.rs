//! Build script: stamps `backscatter --version` with the git commit and the
//! build date.
//!
//! Sets `BACKSCATTER_VERSION_DETAIL` for the crate, e.g.
//! `abc123def456 2026-11-30` in a git checkout, or `2026-11-30` when built
//! from a tarball or `cargo install` (no `.git`, or no `git` program), and
//! `BACKSCATTER_BUILD_DATE` (`YYYY-MM-DD`, for the manual page). The
//! date honours `SOURCE_DATE_EPOCH` (reproducible builds), else the clock.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    // Only in a git checkout of this crate (not a parent repository's).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let toplevel = git(&["-C", &manifest, "rev-parse", "--show-toplevel"]);
    let in_git = toplevel
        .is_some_and(|t| std::fs::canonicalize(t).ok() == std::fs::canonicalize(&manifest).ok());
    let commit = if in_git {
        // Rebuild the stamp when HEAD moves (a commit, a checkout).
        for path in ["HEAD", "packed-refs"] {
            if let Some(p) = git(&["-C", &manifest, "rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={}", abs(&manifest, &p));
            }
        }
        if let Some(r) = git(&["-C", &manifest, "symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = git(&["-C", &manifest, "rev-parse", "--git-path", &r]) {
                println!("cargo:rerun-if-changed={}", abs(&manifest, &p));
            }
        }
        git(&["-C", &manifest, "rev-parse", "--short=12", "HEAD"])
    } else {
        None
    };
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let date = format!("{y:04}-{m:02}-{d:02}");
    println!("cargo:rustc-env=BACKSCATTER_BUILD_DATE={date}");
    let detail = match commit {
        Some(c) => format!("{c} {date}"),
        None => date,
    };
    println!("cargo:rustc-env=BACKSCATTER_VERSION_DETAIL={detail}");
}

fn abs(base: &str, p: &str) -> String {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        p.to_string()
    } else {
        std::path::Path::new(base).join(path).display().to_string()
    }
}
