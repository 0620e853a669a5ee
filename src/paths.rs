//! Where backscatter keeps its files: the platform's config, data and state
//! directories (XDG variables honoured on Linux), and creating files that
//! only the user can read.

use directories::ProjectDirs;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "backscatter")
}

/// The data dir (journal): `~/.local/share/backscatter` on Linux.
pub fn data_dir() -> io::Result<PathBuf> {
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| io::Error::other("no home directory to keep backscatter's data in"))
}

/// The state dir (caches, progress): `~/.local/state/backscatter` on Linux,
/// the data dir elsewhere.
pub fn state_dir() -> io::Result<PathBuf> {
    match project_dirs() {
        Some(d) => Ok(d
            .state_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| d.data_dir().to_path_buf())),
        None => Err(io::Error::other(
            "no home directory to keep backscatter's state in",
        )),
    }
}

/// `DIR/PREFIX-ACCOUNT.EXT`, with the account name made safe for a file
/// name (it comes from the config's table name).
pub fn account_file(dir: &Path, prefix: &str, account: &str, ext: &str) -> PathBuf {
    let safe: String = account
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{prefix}-{safe}.{ext}"))
}

/// Create a directory (and parents) readable by the user alone.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Open a file for appending, created with mode 0600 (an existing file
/// that others could read, left by an older version or by hand, is made
/// private too).
pub fn append_private(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    make_private(&f)?;
    Ok(f)
}

/// Mode 0600 for an open file whose mode lets others in (`open`'s mode
/// applies only to a file it creates).
fn make_private(f: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if f.metadata()?.permissions().mode() & 0o077 != 0 {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = f;
    Ok(())
}

/// Write a file the user named (`report --html FILE`): created or
/// truncated in place, mode 0600 even when it existed with another mode
/// (it holds what is in their mail: addresses, subjects), set before a
/// byte is written.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut o = OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    make_private(&f)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replace a file atomically (write a temp file, fsync, rename), mode 0600.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut o = OpenOptions::new();
        o.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        // A temp file left by a crash keeps its mode when reopened.
        make_private(&f)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
