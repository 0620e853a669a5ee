//! The configuration file: where it is, its TOML shape (one `[accounts.NAME]`
//! table per account, kebab-case keys, unknown keys rejected), validation,
//! and the errors that name the file, the key and what is allowed.
//!
//! Loading reads one file; everything else here is pure. See
//! `assets/config.sample.toml` for every key, documented.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    #[serde(default)]
    accounts: BTreeMap<String, FileAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileAccount {
    #[serde(default)]
    default: bool,
    host: String,
    port: Option<u16>,
    #[serde(default)]
    tls: TlsMode,
    tls_ca_file: Option<PathBuf>,
    username: String,
    #[serde(default)]
    addresses: Vec<String>,
    password: Option<FilePassword>,
    #[serde(default)]
    auth: AuthMechanism,
    #[serde(default = "default_quarantine")]
    quarantine: String,
    sent: Option<Vec<String>>,
    #[serde(default = "default_sent_days")]
    sent_days: u32,
    #[serde(default = "default_watch")]
    watch: Vec<String>,
    #[serde(default = "default_catch_up_days")]
    catch_up_days: u32,
    #[serde(default)]
    outbound_hosts: Vec<String>,
    rules: Option<PathBuf>,
    #[serde(default)]
    compress: Compression,
    #[serde(default)]
    keep: Vec<String>,
    sieve: Option<FileSieve>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSieve {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<TlsMode>,
    max_size: Option<usize>,
}

fn default_quarantine() -> String {
    "Backscatter".into()
}

fn default_sent_days() -> u32 {
    30
}

fn default_watch() -> Vec<String> {
    vec!["INBOX".into()]
}

fn default_catch_up_days() -> u32 {
    2
}

/// How to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS, port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143); refused if the
    /// server does not offer it.
    Starttls,
    /// No TLS: only to a loopback address.
    Plain,
}

/// Whether to compress the IMAP connection with `COMPRESS=DEFLATE`
/// (RFC 4978) when the server offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Compress, except to a loopback address (where bytes cost nothing
    /// and deflating costs CPU on both ends).
    #[default]
    Auto,
    /// Compress whenever the server offers it, loopback included.
    Always,
    /// Never compress.
    Never,
}

impl Compression {
    /// Whether to ask for compression on a connection to `host`, given
    /// whether the server advertises `COMPRESS=DEFLATE`.
    pub fn wanted(self, host: &str, offered: bool) -> bool {
        offered
            && match self {
                Compression::Auto => !is_loopback(host),
                Compression::Always => true,
                Compression::Never => false,
            }
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMechanism {
    /// LOGIN with the password.
    #[default]
    Password,
    /// SASL XOAUTH2: the secret is an OAuth2 access token (Gmail, Outlook).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628): the secret is an OAuth2 access token.
    Oauthbearer,
}

impl AuthMechanism {
    /// The SASL mechanism name, for the OAuth ones.
    pub fn sasl_name(self) -> Option<&'static str> {
        match self {
            AuthMechanism::Password => None,
            AuthMechanism::Xoauth2 => Some("XOAUTH2"),
            AuthMechanism::Oauthbearer => Some("OAUTHBEARER"),
        }
    }

    /// The client's first (and only) SASL message for the OAuth
    /// mechanisms: XOAUTH2 (Google's and Microsoft's format) or
    /// OAUTHBEARER (RFC 7628 section 3.1, with the GS2 header). `None` for
    /// passwords.
    pub fn oauth_message(self, user: &str, host: &str, port: u16, token: &str) -> Option<String> {
        match self {
            AuthMechanism::Password => None,
            AuthMechanism::Xoauth2 => Some(format!("user={user}\x01auth=Bearer {token}\x01\x01")),
            AuthMechanism::Oauthbearer => {
                // RFC 5801: "," and "=" in the authzid are escaped.
                let u = user.replace('=', "=3D").replace(',', "=2C");
                Some(format!(
                    "n,a={u},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
                ))
            }
        }
    }
}

/// Whether `s` can name an environment variable a shell can set: ASCII
/// letters, digits and `_`, not starting with a digit (POSIX.1-2017,
/// 8.1 Environment Variable Definition).
pub fn is_variable_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Is `s` an address as `addresses` lists them: an RFC 5322 addr-spec
/// `local-part@domain`, bare (no display name, angle brackets, spaces or
/// commas), with a domain of letters, digits, `-` and `.` (or an address
/// literal in brackets).
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>,;()\\".contains(c);
    !local.is_empty()
        && !local.chars().any(bad)
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && (domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
            || (domain.starts_with('[') && domain.ends_with(']') && !domain.chars().any(bad)))
}

/// The `password` table as written: exactly one key, validated into a
/// [`SecretSource`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilePassword {
    command: Option<Vec<String>>,
    keyring: Option<bool>,
    env: Option<String>,
}

/// Where the secret (a password, or an OAuth2 access token) comes from
/// (the config file's `password` table; read by [`crate::secret::fetch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A command (no shell) whose first line of output is the secret.
    Command(Vec<String>),
    /// The OS keyring (see `backscatter account login`).
    Keyring,
    /// An environment variable holding the secret.
    Env(String),
}

/// A server to connect to: where, and how the connection is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A name or an IP address (an IPv6 one with or without brackets).
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// A CA certificate (PEM) trusted besides the system's, for a
    /// self-hosted server (`tls-ca-file`).
    pub ca_file: Option<PathBuf>,
}

impl fmt::Display for Endpoint {
    /// `host:port`, as [`endpoint`] writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&endpoint(&self.host, self.port))
    }
}

/// One account, validated, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub default: bool,
    /// The IMAP server (`host`, `port`, `tls`, `tls-ca-file`; port 993 for
    /// implicit TLS, else 143).
    pub imap: Endpoint,
    /// The ManageSieve server (RFC 5804; the `[accounts.NAME.sieve]`
    /// table): the IMAP host on port 4190 by default, with STARTTLS (the
    /// default), implicit TLS, or plain (only to loopback; the default
    /// when the IMAP connection is plain); the same `tls-ca-file`.
    pub sieve: Endpoint,
    /// The largest Sieve script the server accepts, in bytes
    /// (`max-size` in `[accounts.NAME.sieve]`); `None`: learn it from the
    /// server's HAVESPACE answer (RFC 5804 §2.5), else 1 MiB.
    pub sieve_max_size: Option<usize>,
    pub username: String,
    /// The user's own addresses, lowercased.
    pub addresses: Vec<String>,
    pub secret: Option<SecretSource>,
    pub auth: AuthMechanism,
    pub quarantine: String,
    /// Configured Sent mailboxes; `None` = those marked `\Sent`.
    pub sent: Option<Vec<String>>,
    /// `sent-days`: a response is judged against the mail sent in this
    /// many days before it arrived ([`crate::sent::Window`]; default 30).
    pub sent_days: u32,
    /// Mailboxes `watch` keeps clean (one connection each).
    pub watch: Vec<String>,
    /// On the first start of `watch`, how many days back to catch up.
    pub catch_up_days: u32,
    /// The user's outbound (submission/relay) hosts, names or addresses,
    /// lowercased: mail that passed through one of them came from the
    /// user's own infrastructure (see `origin`). More are learned from the
    /// originals of legitimate bounces.
    pub outbound_hosts: Vec<String>,
    /// The user's own Sieve rules, run by `filter` and `watch` (`~`
    /// expanded; read, and a missing file reported, by the commands that
    /// run them, so that it never stops `clean` or `restore`).
    pub rules: Option<PathBuf>,
    /// `COMPRESS=DEFLATE` on the IMAP connection.
    pub compress: Compression,
    /// The allow-list: automated mail from these senders, domains,
    /// reporting hosts or lists is never quarantined (see [`crate::keep`]).
    /// As loaded; [`keep_now`] reads the file again when it changed.
    pub keep: Vec<String>,
    /// The config file the account was read from (`None` for an account
    /// made in code), so that a long-running agent can pick up a later
    /// `backscatter keep` ([`keep_now`]).
    pub config_file: Option<PathBuf>,
}

/// A configuration error: always names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub accounts: Vec<Account>,
}

impl Config {
    /// Accounts whose password is written in the file itself: a
    /// `password.command` that echoes it ([`echoes_literal`]).
    pub fn literal_passwords(&self) -> Vec<&str> {
        self.accounts
            .iter()
            .filter(|a| match &a.secret {
                Some(SecretSource::Command(c)) => echoes_literal(c),
                _ => false,
            })
            .map(|a| a.name.as_str())
            .collect()
    }
}

/// Shells whose `-c` script [`echoes_literal`] reads.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"];

/// Does this `password.command` print a password written in it: `echo`
/// or `printf` itself (`["printf", "pw"]`), or a shell's `-c` script
/// (`["sh", "-c", "echo pw"]`) one of whose commands is `echo` or
/// `printf` with a written argument (not an option, nor a `printf` format
/// with `%`) and none that expands (`$`, a backquote). Scripts that print
/// a variable or a command's output (`echo "$PW"`, `printf %s "$(pass
/// show mail)"`) are not counted, nor are scripts that do not split as
/// shell words: a false alarm would teach users to ignore the warning.
pub fn echoes_literal(argv: &[String]) -> bool {
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let Some(prog) = argv.first().map(|p| base(p)) else {
        return false;
    };
    if prog == "echo" || prog == "printf" {
        return true;
    }
    if !SHELLS.contains(&prog.as_str()) {
        return false;
    }
    // The script follows `-c` (or an option cluster with c: `-ec`).
    let script = argv
        .iter()
        .skip(1)
        .position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
    let Some(script) = script.and_then(|i| argv.get(i + 2)) else {
        return false;
    };
    let Some(words) = shlex::split(script) else {
        return false;
    };
    // Per command: is it echo/printf, has it a literal argument, does
    // any argument expand (then what it prints is computed: not counted,
    // `$(cat ~/.pw)` splitting into words of its own included).
    let mut at_start = true;
    let mut printing: Option<String> = None;
    let (mut format_seen, mut literal, mut expands) = (false, false, false);
    for (i, w) in words.iter().enumerate() {
        let separator = ["&&", "||", "|", "&"].contains(&w.as_str());
        let ends = i + 1 == words.len() || w.ends_with(';') || separator;
        let word = if separator {
            ""
        } else {
            w.trim_end_matches(';')
        };
        if at_start {
            let word = word.trim_start_matches(['(', '{']);
            if !["exec", "command", "builtin", ""].contains(&word) {
                let b = base(word);
                printing = (b == "echo" || b == "printf").then_some(b);
                (format_seen, literal, expands) = (false, false, false);
                at_start = false;
            }
        } else if let Some(p) = &printing {
            let option = word.starts_with('-');
            let format = p == "printf" && !format_seen && word.contains('%');
            if p == "printf" && !option {
                format_seen = true;
            }
            expands |= word.contains('$') || word.contains('`');
            literal |= !word.is_empty() && !option && !format;
        }
        if ends {
            if printing.is_some() && literal && !expands {
                return true;
            }
            at_start = true;
            printing = None;
        }
    }
    false
}

/// Is `host` a loopback address or `localhost`?
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` as people and URLs write it: an IPv6 address in brackets
/// (`[::1]:143`, RFC 3986 §3.2.2), a name or IPv4 address as it is
/// (`imap.example.org:993`).
pub fn endpoint(host: &str, port: u16) -> String {
    let h = host.trim_matches(['[', ']']);
    if h.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{h}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The config file to use: `--config`, else `$BACKSCATTER_CONFIG`, else the
/// platform's config dir (`~/.config/backscatter/config.toml` on Linux).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("BACKSCATTER_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    crate::paths::project_dirs().map(|d| d.config_dir().join("config.toml"))
}

/// The documented sample config (`backscatter config sample`): every key,
/// with comments. A test parses it, so it stays valid.
pub const SAMPLE: &str = include_str!("../assets/config.sample.toml");

/// The account's keep list as its config file says now: the file is
/// looked at (one `stat`) on every call and parsed again only when its
/// modification time or size changed since the last call, so `watch` can
/// call this before each batch and a `backscatter keep` reaches a running
/// agent at its next batch. A file that no longer parses (an edit in
/// progress) or no longer has the account keeps the last list that did,
/// with one warning per version of the file.
pub fn keep_now(a: &Account) -> Vec<String> {
    use std::sync::Mutex;
    type Seen = BTreeMap<(PathBuf, String), (Option<(std::time::SystemTime, u64)>, Vec<String>)>;
    static CACHE: Mutex<Seen> = Mutex::new(BTreeMap::new());
    let Some(path) = &a.config_file else {
        return a.keep.clone();
    };
    let stamp = std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let key = (path.clone(), a.name.clone());
    // The first call reads the file too: it may have changed since the
    // account was loaded.
    let entry = cache.entry(key).or_insert_with(|| (None, a.keep.clone()));
    if entry.0 == stamp || stamp.is_none() {
        return entry.1.clone();
    }
    entry.0 = stamp;
    match load(path).map(|c| c.accounts.into_iter().find(|x| x.name == a.name)) {
        Ok(Some(now)) => {
            if now.keep != entry.1 {
                tracing::info!(account = %a.name, "keep list: {} changed; {} entr{} from now on", path.display(), now.keep.len(), if now.keep.len() == 1 { "y" } else { "ies" });
            }
            entry.1 = now.keep;
        }
        Ok(None) => {
            tracing::warn!(account = %a.name, "keep list: {} no longer has this account; the keep list read before still applies", path.display())
        }
        Err(e) => {
            tracing::warn!(account = %a.name, "keep list: {e}; the keep list read before still applies until the file is fixed")
        }
    }
    entry.1.clone()
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            " (create it with `backscatter account add`, or from `backscatter config sample`; or give --config FILE)"
        } else {
            ""
        };
        ConfigError(format!(
            "cannot read config file {}: {}{hint}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    parse(&text, path)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Parse and validate config text (`path` is for messages).
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().replace('\n', " ");
        match line {
            Some(l) => ConfigError(format!("{}:{l}: {msg}", path.display())),
            None => ConfigError(format!("{}: {msg}", path.display())),
        }
    })?;
    let err = |account: &str, key: &str, msg: String| {
        ConfigError(format!(
            "{}: accounts.{account}.{key}: {msg}",
            path.display()
        ))
    };
    let mut accounts = Vec::new();
    for (name, a) in file.accounts {
        if a.host.trim().is_empty() {
            return Err(err(&name, "host", "must not be empty".into()));
        }
        if a.username.trim().is_empty() {
            return Err(err(&name, "username", "must not be empty".into()));
        }
        if a.tls == TlsMode::Plain && !is_loopback(&a.host) {
            return Err(err(
                &name,
                "tls",
                format!(
                    "\"plain\" sends your password unencrypted and is allowed only to a loopback address, not {}; use \"implicit\" or \"starttls\"",
                    a.host
                ),
            ));
        }
        // Read (and its absence reported) by the commands that run the
        // rules: a missing rules file must not stop `clean`, `restore` or
        // `restore --rules` from working.
        let rules = a.rules.as_deref().map(expand_home);
        if let Some(ca) = &a.tls_ca_file {
            if !ca.exists() {
                return Err(err(
                    &name,
                    "tls-ca-file",
                    format!("{} does not exist", ca.display()),
                ));
            }
        }
        let secret = match &a.password {
            None => None,
            Some(p) => {
                let n =
                    p.command.is_some() as u8 + p.keyring.is_some() as u8 + p.env.is_some() as u8;
                if n != 1 {
                    return Err(err(
                        &name,
                        "password",
                        "give exactly one of password.command, password.keyring, password.env"
                            .into(),
                    ));
                }
                if let Some(c) = &p.command {
                    if c.is_empty() || c[0].trim().is_empty() {
                        return Err(err(
                            &name,
                            "password.command",
                            "must name a program, e.g. [\"pass\", \"show\", \"mail/work\"]".into(),
                        ));
                    }
                    Some(SecretSource::Command(c.clone()))
                } else if let Some(k) = p.keyring {
                    if !k {
                        return Err(err(
                            &name,
                            "password.keyring",
                            "only `true` means something here; remove the key otherwise".into(),
                        ));
                    }
                    Some(SecretSource::Keyring)
                } else {
                    let v = p.env.clone().unwrap_or_default();
                    if v.trim().is_empty() {
                        return Err(err(&name, "password.env", "must name a variable".into()));
                    }
                    if !is_variable_name(&v) {
                        // Most likely the password itself: never echoed.
                        return Err(err(
                            &name,
                            "password.env",
                            "must be the name of an environment variable that holds the password (letters, digits and _, such as \"MAIL_PASSWORD\"), not the password itself".into(),
                        ));
                    }
                    Some(SecretSource::Env(v))
                }
            }
        };
        if a.quarantine.trim().is_empty() {
            return Err(err(&name, "quarantine", "must not be empty".into()));
        }
        if let Some(bad) = crate::sieve::unsafe_mailbox_name(&a.quarantine) {
            return Err(err(&name, "quarantine", bad.into()));
        }
        if a.quarantine.eq_ignore_ascii_case("INBOX") {
            return Err(err(
                &name,
                "quarantine",
                "must be a mailbox other than INBOX".into(),
            ));
        }
        if a.sent
            .iter()
            .flatten()
            .any(|m| m.eq_ignore_ascii_case(&a.quarantine))
        {
            return Err(err(
                &name,
                "quarantine",
                "must not be a Sent mailbox (the sent index is built from it)".into(),
            ));
        }
        if a.sent_days == 0 {
            return Err(err(&name, "sent-days", "must be at least 1".into()));
        }
        if a.watch.is_empty() || a.watch.iter().any(|m| m.trim().is_empty()) {
            return Err(err(
                &name,
                "watch",
                "must list at least one mailbox, e.g. [\"INBOX\"]".into(),
            ));
        }
        if a.watch.iter().any(|m| m == &a.quarantine) {
            return Err(err(
                &name,
                "watch",
                "must not include the quarantine mailbox".into(),
            ));
        }
        for k in &a.keep {
            if let Err(e) = crate::keep::parse(k) {
                return Err(err(&name, "keep", e));
            }
        }
        if let Some(bad) = a.addresses.iter().find(|s| !is_address(s.trim())) {
            return Err(err(
                &name,
                "addresses",
                format!(
                    "\"{}\" is not an email address (local-part@domain, such as \"me@example.org\")",
                    bad.replace(char::is_control, " ")
                ),
            ));
        }
        let addresses = if a.addresses.is_empty() {
            if a.username.contains('@') {
                vec![a.username.to_lowercase()]
            } else {
                Vec::new()
            }
        } else {
            a.addresses
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect()
        };
        let port = a.port.unwrap_or(match a.tls {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::Plain => 143,
        });
        let default_sieve_tls = match a.tls {
            TlsMode::Plain => TlsMode::Plain,
            _ => TlsMode::Starttls,
        };
        let sieve = a.sieve.as_ref();
        let sieve = Endpoint {
            host: sieve
                .and_then(|s| s.host.clone())
                .unwrap_or_else(|| a.host.clone()),
            port: sieve.and_then(|s| s.port).unwrap_or(4190),
            tls: sieve.and_then(|s| s.tls).unwrap_or(default_sieve_tls),
            ca_file: a.tls_ca_file.clone(),
        };
        let sieve_max_size = a.sieve.as_ref().and_then(|s| s.max_size);
        if let Some(m) = sieve_max_size.filter(|&m| m < 1024) {
            return Err(err(
                &name,
                "sieve.max-size",
                format!("is {m} bytes; no backscatter script fits in less than 1024 (Cyrus allows 32768 by default)"),
            ));
        }
        accounts.push(Account {
            name,
            default: a.default,
            imap: Endpoint {
                host: a.host,
                port,
                tls: a.tls,
                ca_file: a.tls_ca_file,
            },
            sieve,
            sieve_max_size,
            username: a.username,
            addresses,
            secret,
            auth: a.auth,
            quarantine: a.quarantine,
            sent: a.sent,
            sent_days: a.sent_days,
            watch: a.watch,
            catch_up_days: a.catch_up_days,
            outbound_hosts: a
                .outbound_hosts
                .iter()
                .map(|h| h.trim().trim_matches(['[', ']']).to_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            rules,
            compress: a.compress,
            keep: a.keep,
            config_file: Some(path.to_path_buf()),
        });
    }
    if accounts.iter().filter(|a| a.default).count() > 1 {
        return Err(ConfigError(format!(
            "{}: more than one account has default = true",
            path.display()
        )));
    }
    Ok(Config {
        path: path.to_path_buf(),
        accounts,
    })
}

impl Config {
    /// The account called `name`, or the default one (the one marked
    /// `default = true`, or the only one).
    pub fn account(&self, name: Option<&str>) -> Result<&Account, ConfigError> {
        let names = || {
            self.accounts
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match name {
            Some(n) => self.accounts.iter().find(|a| a.name == n).ok_or_else(|| {
                ConfigError(format!(
                    "{}: no account called \"{n}\" (accounts: {})",
                    self.path.display(),
                    names()
                ))
            }),
            None => {
                if self.accounts.is_empty() {
                    return Err(ConfigError(format!(
                        "{}: no accounts configured (add one with `backscatter account add`; `backscatter config sample` shows every key)",
                        self.path.display()
                    )));
                }
                if let Some(a) = self.accounts.iter().find(|a| a.default) {
                    return Ok(a);
                }
                if self.accounts.len() == 1 {
                    return Ok(&self.accounts[0]);
                }
                Err(ConfigError(format!(
                    "{}: several accounts ({}) and none has default = true: name one with --account",
                    self.path.display(),
                    names()
                )))
            }
        }
    }
}

/// `~/x` → `$HOME/x` (the platform's home directory); other paths as given.
fn expand_home(p: &std::path::Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => match directories::BaseDirs::new() {
            Some(b) => b.home_dir().join(rest),
            None => p.to_path_buf(),
        },
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_bracket_ipv6() {
        assert_eq!(endpoint("::1", 143), "[::1]:143");
        assert_eq!(endpoint("[::1]", 143), "[::1]:143");
        assert_eq!(endpoint("2001:db8::5", 993), "[2001:db8::5]:993");
        assert_eq!(endpoint("127.0.0.1", 143), "127.0.0.1:143");
        assert_eq!(endpoint("imap.example.org", 993), "imap.example.org:993");
    }

    /// Newcomer round 3, 15m: a double quote (escaped in every IMAP
    /// command and in the Sieve script) is a usable quarantine name; a
    /// backslash, `${` or a control character is refused, saying why.
    #[test]
    fn quarantine_names_the_sieve_script_can_file_into() {
        let with = |q: &str| {
            p(&format!(
                "[accounts.a]\nhost = \"h\"\nusername = \"u\"\nquarantine = '{q}'\n"
            ))
        };
        assert_eq!(
            with("Qü\"ar/Spam").unwrap().accounts[0].quarantine,
            "Qü\"ar/Spam"
        );
        for bad in ["Back\\slash", "Spam${x}"] {
            let e = with(bad).unwrap_err();
            assert!(
                e.0.contains("accounts.a.quarantine: must not contain a backslash"),
                "{e}"
            );
        }
    }

    /// Newcomer round 3, 15j: an entry that is no address is refused,
    /// named, in one sentence.
    #[test]
    fn addresses_must_be_addresses() {
        let with = |list: &str| {
            p(&format!(
                "[accounts.a]\nhost = \"h\"\nusername = \"u\"\naddresses = {list}\n"
            ))
        };
        let e = with("[\"me@example.org\", \"not an address\"]").unwrap_err();
        assert_eq!(
            e.0,
            "/cfg.toml: accounts.a.addresses: \"not an address\" is not an email address (local-part@domain, such as \"me@example.org\")"
        );
        for bad in [
            "me",
            "@example.org",
            "me@",
            "Me <me@example.org>",
            "a@b,c@d",
            "me@exa mple.org",
            "me@.org",
        ] {
            assert!(with(&format!("[\"{bad}\"]")).is_err(), "{bad}");
        }
        let ok = with(
            "[\" Me@Example.ORG \", \"ich@bücher.example\", \"root@localhost\", \"x@[192.0.2.1]\"]",
        )
        .unwrap();
        assert_eq!(ok.accounts[0].addresses[0], "me@example.org");
    }

    #[test]
    fn commands_that_echo_a_written_password_are_told_apart() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for yes in [
            &["printf", "pw"][..],
            &["/bin/echo", "pw"],
            &["sh", "-c", "echo carolpw"],
            &["/bin/bash", "-ec", "printf '%s' 'carol pw'"],
            &["sh", "-c", "set -e; exec printf %s\\n carolpw"],
            &["zsh", "-c", "true && echo -n carolpw"],
            &["sh", "-c", "(echo carolpw)"],
            &["sh", "-c", "echo carolpw | tr -d '\\n'"],
        ] {
            assert!(super::echoes_literal(&argv(yes)), "{yes:?}");
        }
        for no in [
            &["pass", "show", "mail"][..],
            &["sh", "-c", "echo \"$MAILPW\""],
            &["sh", "-c", "printf %s \"$(pass show mail)\""],
            &["sh", "-c", "pass show mail | head -n 1"],
            &["bash", "-c", "secret-tool lookup service mail; echo $?"],
            &["sh", "-c", "echo 'unbalanced"],
            &["sh", "script.sh"],
            &["python3", "-c", "print('pw')"],
            &["sh", "-c", "echo -n $(cat ~/.mailpw)"],
            &["sh", "-c", "printf '%s' `cat ~/.mailpw`"],
            &["sh", "-c", "echo -n && pass show mail"],
        ] {
            assert!(!super::echoes_literal(&argv(no)), "{no:?}");
        }
    }

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/cfg.toml"))
    }

    #[test]
    fn the_quarantine_cannot_be_a_sent_mailbox() {
        let e = p(r#"
[accounts.work]
host = "imap.example.org"
username = "me@example.org"
password.env = "PW"
quarantine = "Sent Items"
sent = ["INBOX/Sent", "sent items"]
"#)
        .unwrap_err();
        assert!(e.0.contains("must not be a Sent mailbox"), "{}", e.0);
    }

    #[test]
    fn minimal_account_gets_defaults() {
        let c = p(r#"
[accounts.work]
host = "imap.example.org"
username = "Me@Example.org"
password.command = ["pass", "show", "mail/work"]
"#)
        .unwrap();
        let a = c.account(None).unwrap();
        assert_eq!(a.imap.port, 993);
        assert_eq!(a.imap.tls, TlsMode::Implicit);
        assert_eq!(a.addresses, vec!["me@example.org"]);
        assert_eq!(a.quarantine, "Backscatter");
        assert_eq!(a.sent_days, 30);
        assert_eq!(a.sieve.host, "imap.example.org");
        assert_eq!(a.sieve.port, 4190);
        assert_eq!(a.sieve.tls, TlsMode::Starttls);
        assert_eq!(a.sieve.to_string(), "imap.example.org:4190");
        assert!(a.outbound_hosts.is_empty());
        let c = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\noutbound-hosts = [\"SMTP.Example.org\", \"[192.0.2.25]\", \" \"]\n").unwrap();
        assert_eq!(
            c.account(None).unwrap().outbound_hosts,
            vec!["smtp.example.org", "192.0.2.25"]
        );
        assert_eq!(
            a.secret,
            Some(SecretSource::Command(vec![
                "pass".into(),
                "show".into(),
                "mail/work".into()
            ]))
        );
    }

    #[test]
    fn errors_name_the_file_the_key_and_what_is_allowed() {
        let e = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\nhots = 1\n").unwrap_err();
        assert!(e.0.starts_with("/cfg.toml:"), "{e}");
        assert!(e.0.contains("hots"), "{e}");
        let e = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\ntls = \"tsl\"\n").unwrap_err();
        assert!(e.0.contains("tsl") && e.0.contains("starttls"), "{e}");
        let e = p("[accounts.a]\nhost = \"imap.example.org\"\nusername = \"u\"\ntls = \"plain\"\n")
            .unwrap_err();
        assert!(
            e.0.contains("accounts.a.tls") && e.0.contains("loopback"),
            "{e}"
        );
        let e = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\npassword.env = \"X\"\npassword.keyring = true\n")
            .unwrap_err();
        assert!(e.0.contains("exactly one"), "{e}");
        assert!(
            p("[accounts.a]\nhost = \"127.0.0.1\"\nusername = \"u\"\ntls = \"plain\"\n").is_ok()
        );
    }

    #[test]
    fn compression_is_auto_by_default_and_off_to_loopback() {
        let c = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\n").unwrap();
        let a = c.account(None).unwrap();
        assert_eq!(a.compress, Compression::Auto);
        assert!(Compression::Auto.wanted("imap.example.org", true));
        assert!(!Compression::Auto.wanted("imap.example.org", false));
        assert!(!Compression::Auto.wanted("127.0.0.1", true));
        assert!(!Compression::Auto.wanted("[::1]", true));
        assert!(Compression::Always.wanted("127.0.0.1", true));
        assert!(!Compression::Always.wanted("127.0.0.1", false));
        assert!(!Compression::Never.wanted("imap.example.org", true));
        let c = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\ncompress = \"never\"\n").unwrap();
        assert_eq!(c.account(None).unwrap().compress, Compression::Never);
        let e =
            p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\ncompress = \"yes\"\n").unwrap_err();
        assert!(e.0.contains("yes") && e.0.contains("always"), "{e}");
    }

    #[test]
    fn account_selection() {
        let c = p("[accounts.a]\nhost = \"h\"\nusername = \"u\"\n[accounts.b]\nhost = \"h\"\nusername = \"u\"\n").unwrap();
        assert!(c.account(None).unwrap_err().0.contains("--account"));
        assert_eq!(c.account(Some("b")).unwrap().name, "b");
        assert!(c
            .account(Some("z"))
            .unwrap_err()
            .0
            .contains("accounts: a, b"));
    }
}

#[cfg(test)]
mod sample {
    #[test]
    fn the_sample_config_is_valid() {
        let text = super::SAMPLE;
        let c = super::parse(text, std::path::Path::new("assets/config.sample.toml"))
            .expect("the shipped sample parses");
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.account(None).unwrap().name, "work");
    }
}
