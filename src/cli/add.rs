//! `backscatter account add [NAME]`: set up an account without writing TOML
//! by hand. Asks on a terminal for what the flags did not give, finds the
//! servers from the address (a known provider's settings, else RFC 6186
//! SRV records, else an autoconfig file), checks the login, stores
//! the password in the keyring or writes a password command, appends the
//! account (with comments) to the config file, then runs `account check`.

use super::common::Verbosity;
use super::Error;
use crate::config::TlsMode;
use crate::discover::{self, Endpoint, LoginName, NewAccount, Password};
use crate::discover_net::{Found, Source};
use clap::{Args, ValueEnum};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tls {
    Implicit,
    Starttls,
    Plain,
}

impl From<Tls> for TlsMode {
    fn from(t: Tls) -> Self {
        match t {
            Tls::Implicit => TlsMode::Implicit,
            Tls::Starttls => TlsMode::Starttls,
            Tls::Plain => TlsMode::Plain,
        }
    }
}

/// Add an account to the config file (created if missing).
///
/// On a terminal it asks for what the options do not give. It finds the
/// servers from the address, and says where it found them:
///
///   1. the settings of Gmail, Outlook / Microsoft 365, Fastmail, iCloud,
///      Yahoo, mailbox.org, Proton Mail Bridge, GMX, WEB.DE and Zoho;
///   2. DNS SRV records (RFC 6186: _imaps._tcp, _imap._tcp; RFC 5804:
///      _sieve._tcp for ManageSieve);
///   3. an autoconfig file (https://autoconfig.DOMAIN/mail/config-v1.1.xml,
///      then https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml).
///
/// When nothing is found it asks for the server (on a terminal) or stops
/// asking for --host. --host skips the search (give --port / --tls where
/// they are not 993 / implicit). Then it logs in once, stores the password
/// in the OS keyring (or writes your password command), appends the
/// account to the config (the rest of the file is kept as it is), and
/// runs `account check`.
///
/// Examples:
///
///   backscatter account add home
///
///   backscatter account add work --address me@example.org --host imap.example.org \
///       --password-command "pass show mail/work"
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AddArgs {
    /// The account's name, its [accounts.NAME] table (default: the
    /// address's domain without its last label, e.g. "mailbox" for
    /// me@mailbox.org).
    pub name: Option<String>,
    /// Your e-mail address.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// The IMAP server (default: found from the address).
    #[arg(long)]
    pub host: Option<String>,
    /// The IMAP port (default: 993 for implicit TLS, 143 otherwise).
    #[arg(long)]
    pub port: Option<u16>,
    /// How TLS is used (default: implicit).
    #[arg(long, value_enum)]
    pub tls: Option<Tls>,
    /// An extra trust anchor (PEM) for a server with its own CA.
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The login name (default: the address).
    #[arg(long)]
    pub username: Option<String>,
    /// A command that prints the password on its first line, e.g.
    /// "pass show mail/home". Split into words as a shell would (quote a
    /// word with spaces: 'pass show "mail/my account"') and run without a
    /// shell; for a pipe or ~, wrap it: 'sh -c "gpg -dq ~/pw.gpg"'.
    #[arg(long, value_name = "COMMAND", conflicts_with_all = ["keyring", "password_env"])]
    pub password_command: Option<String>,
    /// Ask for the password and store it in the OS keyring (the default on
    /// a terminal).
    #[arg(long, conflicts_with = "password_env")]
    pub keyring: bool,
    /// The name of the environment variable that holds the password
    /// (e.g. MAIL_PASSWORD; never the password itself).
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// The ManageSieve server (default: the provider's, else the IMAP host).
    #[arg(long, value_name = "HOST")]
    pub sieve_host: Option<String>,
    /// The ManageSieve port (default: 4190).
    #[arg(long, value_name = "PORT")]
    pub sieve_port: Option<u16>,
    /// Neither log in before writing nor run `account check` after.
    #[arg(long)]
    pub no_check: bool,
    /// The DNS server to ask for SRV records and the autoconfig hosts
    /// (IP or IP:PORT; default: the system's resolver).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_nameserver)]
    pub nameserver: Option<std::net::SocketAddr>,
}

fn parse_nameserver(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an IP address or IP:PORT ([IPv6]:PORT)"))
}

fn tls_name(t: TlsMode) -> &'static str {
    match t {
        TlsMode::Implicit => "TLS",
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Plain => "plaintext",
    }
}

/// A password command as typed (`pass show "mail/my account"`) split
/// into the words of `password.command` as a POSIX shell splits them
/// (quotes and backslashes, by `shlex`), without running a shell: what
/// only a shell would do (a pipe, a redirection, `$VAR`, `~`, `;`, `&&`)
/// is refused with the way to ask a shell for it. `what` names where the
/// command came from, for the error.
pub fn command_words(line: &str, what: &str) -> Result<Vec<String>, Error> {
    let example = "e.g. --password-command 'pass show \"mail/my account\"'";
    let Some(words) = shlex::split(line) else {
        return Err(Error::Usage(format!(
            "{what} has an unclosed quote or ends with a backslash: quote it as you would in a shell, {example}; nothing written"
        )));
    };
    if words.is_empty() {
        return Err(Error::Usage(format!(
            "{what} is empty: give the command that prints the password, {example}; nothing written"
        )));
    }
    // `sh -c "..."` is the way to ask for a shell: its script is its own.
    let is_shell = std::path::Path::new(&words[0])
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| ["sh", "bash", "dash", "zsh", "ksh", "fish"].contains(&n));
    let shell_only = !is_shell
        && words.iter().any(|w| {
            ["|", "||", "&&", ";", "&", ">", ">>", "<", "2>"].contains(&w.as_str())
                || w.starts_with('~')
                || w.contains('$')
                || w.contains('`')
        });
    if shell_only {
        return Err(Error::Usage(format!(
            "{what} is run without a shell, so a pipe, redirection, ~ or $VARIABLE in it would not work: ask a shell for them, e.g. --password-command 'sh -c \"gpg -dq ~/.mail-password.gpg | head -n 1\"'; nothing written"
        )));
    }
    Ok(words)
}

/// Ask on the terminal; `default` is taken on an empty answer.
fn ask(question: &str, default: Option<&str>) -> Result<String, Error> {
    let mut err = std::io::stderr().lock();
    match default {
        Some(d) => write!(err, "{question} [{d}]: "),
        None => write!(err, "{question}: "),
    }
    .and_then(|()| err.flush())
    .map_err(|e| Error::Runtime(format!("cannot ask: {e}")))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Runtime(format!("cannot read the answer: {e}")))?;
    let line = line.trim();
    Ok(if line.is_empty() {
        default.unwrap_or_default().to_string()
    } else {
        line.to_string()
    })
}

/// The value from a flag, else asked on a terminal, else a usage error
/// naming the flag.
fn value(
    given: Option<String>,
    interactive: bool,
    question: &str,
    default: Option<&str>,
    flag: &str,
) -> Result<String, Error> {
    if let Some(v) = given.filter(|v| !v.trim().is_empty()) {
        return Ok(v.trim().to_string());
    }
    if interactive {
        let v = ask(question, default)?;
        if !v.is_empty() {
            return Ok(v);
        }
    } else if let Some(d) = default {
        return Ok(d.to_string());
    }
    Err(Error::Usage(format!("{question}: give {flag}")))
}

fn default_name(address: &str) -> String {
    let domain = address.rsplit_once('@').map_or(address, |(_, d)| d);
    let first = domain.split('.').next().unwrap_or("mail");
    let n: String = first
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if n.is_empty() {
        "mail".into()
    } else {
        n
    }
}

/// Where discovery found the servers, for messages and the config comment.
fn describe(f: &Found) -> String {
    match &f.source {
        Source::Srv => "from DNS SRV records (RFC 6186)".into(),
        Source::Autoconfig(url) => match &f.provider {
            Some(p) => format!("from the autoconfig file of {p} at {url}"),
            None => format!("from the autoconfig file at {url}"),
        },
    }
}

pub fn run(args: AddArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let path = crate::config::locate(config).ok_or_else(|| {
        Error::Usage("cannot find a home directory for the config file: give --config FILE".into())
    })?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::Usage(format!("cannot read {}: {e}", path.display()))),
    };
    // The existing config must be valid: we append to it, never rewrite.
    let names: Vec<String> = match &existing {
        Some(t) => crate::config::parse(t, &path)
            .map_err(|e| Error::Usage(e.0))?
            .accounts
            .iter()
            .map(|a| a.name.clone())
            .collect(),
        None => Vec::new(),
    };

    let address = value(
        args.address,
        interactive,
        "Your e-mail address",
        None,
        "--address",
    )?;
    if !address.contains('@') {
        return Err(Error::Usage(format!(
            "\"{address}\" is not an e-mail address (give --address me@example.org)"
        )));
    }
    let preset = discover::preset(&address);
    let name = value(
        args.name,
        interactive,
        "A name for this account",
        Some(&default_name(&address)),
        "NAME",
    )?;
    if names.contains(&name) {
        return Err(Error::Usage(format!(
            "{} already has an account called \"{name}\"; pick another NAME (or edit the file)",
            path.display()
        )));
    }
    if let Some(p) = &preset {
        super::common::info(&format!(
            "{} (known provider): {} ({}).",
            p.provider,
            crate::config::endpoint(&p.imap.host, p.imap.port),
            tls_name(p.imap.tls)
        ));
        if let Some(n) = p.note {
            super::common::info(&format!("Note: {n}."));
        }
    }
    // Not a known provider and no --host: SRV records, then autoconfig.
    let domain = discover::domain_of(&address);
    let found = if preset.is_none() && args.host.is_none() {
        let opts = crate::discover_net::Options {
            nameserver: args.nameserver,
            ..Default::default()
        };
        let (found, trail) = crate::discover_net::discover(&address, &opts);
        if super::common::verbosity() == Verbosity::Verbose {
            for line in &trail {
                eprintln!("  {line}");
            }
        }
        match &found {
            Some(f) => super::common::info(&format!(
                "Found {} ({}) {}.",
                crate::config::endpoint(&f.imap.host, f.imap.port),
                tls_name(f.imap.tls),
                describe(f)
            )),
            None if !interactive => {
                return Err(Error::Usage(format!(
                    "found no IMAP server for {domain} (not a provider backscatter knows, no SRV records, no autoconfig file): give --host"
                )))
            }
            None => {}
        }
        found
    } else {
        None
    };
    // Where the IMAP server came from, when not given by hand.
    let auto: Option<&Endpoint> = match (&preset, &found) {
        _ if args.host.is_some() => None,
        (Some(p), _) => Some(&p.imap),
        (None, Some(f)) => Some(&f.imap),
        (None, None) => None,
    };
    let host = match (&args.host, auto) {
        (Some(h), _) => h.clone(),
        (None, Some(e)) => e.host.clone(),
        (None, None) => value(
            None,
            interactive,
            &format!(
                "IMAP server for {domain} (found none: not a known provider, no SRV records, no autoconfig file)"
            ),
            None,
            "--host",
        )?,
    };
    let tls: TlsMode = match (args.tls, auto) {
        (Some(t), _) => t.into(),
        (None, Some(e)) => e.tls,
        _ => TlsMode::Implicit,
    };
    // An option's fault is told as the option, not as the config key it
    // would have become.
    if args.tls.is_some() && tls == TlsMode::Plain && !crate::config::is_loopback(&host) {
        return Err(Error::Usage(format!(
            "--tls plain sends your password unencrypted and is allowed only to a loopback address, not {}: use --tls implicit or --tls starttls; nothing written",
            host.replace(char::is_control, " ")
        )));
    }
    let port = match (args.port, auto) {
        (Some(p), _) => p,
        (None, Some(e)) => e.port,
        _ => {
            if tls == TlsMode::Implicit {
                993
            } else {
                143
            }
        }
    };
    let login_default = match (preset.as_ref().map(|p| p.login), &found) {
        (Some(LoginName::LocalPart), _) => {
            address.split('@').next().unwrap_or(&address).to_string()
        }
        (
            None,
            Some(Found {
                username: Some(u), ..
            }),
        ) => u.clone(),
        _ => address.clone(),
    };
    let username = value(
        args.username,
        interactive,
        "Login name",
        Some(&login_default),
        "--username",
    )?;
    let password = if let Some(c) = &args.password_command {
        Password::Command(command_words(c, "--password-command")?)
    } else if let Some(v) = &args.password_env {
        // Neither echoed: a value that is no variable name, or names no
        // variable, is most likely the password itself.
        if !crate::config::is_variable_name(v) {
            return Err(Error::Usage(
                "--password-env takes the name of an environment variable that holds the password (letters, digits and _, e.g. --password-env MAIL_PASSWORD), not the password itself; nothing written".into(),
            ));
        }
        if !args.no_check && std::env::var_os(v).is_none() {
            return Err(Error::Usage(
                "--password-env names an environment variable that is not set here: export it first (export MAIL_PASSWORD=...; --password-env MAIL_PASSWORD), or add --no-check to write the account without logging in; nothing written".into(),
            ));
        }
        Password::Env(v.clone())
    } else if args.keyring {
        Password::Keyring
    } else if interactive {
        // Offer both: the keyring needs a desktop session (Secret Service,
        // macOS Keychain); a password manager's command works everywhere.
        let how = ask(
            "Keep the password in the OS keyring, or get it from a command (such as `pass show mail/work`)? keyring/command",
            Some("keyring"),
        )?;
        if how.to_ascii_lowercase().starts_with('c') {
            let c = ask("Password command", None)?;
            Password::Command(command_words(&c, "the password command")?)
        } else {
            Password::Keyring
        }
    } else {
        return Err(Error::Usage(
            "where does the password come from? give --keyring (asks for it and stores it in the OS keyring), --password-command COMMAND or --password-env VAR".into(),
        ));
    };
    let sieve = match (&args.sieve_host, args.sieve_port, &preset) {
        (None, None, Some(p)) if args.host.is_none() => p.sieve.clone(),
        (None, None, None) if args.host.is_none() => found.as_ref().and_then(|f| f.sieve.clone()),
        (None, None, _) => None,
        (h, p, _) => Some(Endpoint {
            host: h.clone().unwrap_or_else(|| host.clone()),
            port: p.unwrap_or(4190),
            tls: if crate::config::is_loopback(h.as_deref().unwrap_or(&host))
                && tls == TlsMode::Plain
            {
                TlsMode::Plain
            } else {
                TlsMode::Starttls
            },
        }),
    };
    let new = NewAccount {
        name: name.clone(),
        address: address.clone(),
        imap: Endpoint { host, port, tls },
        tls_ca_file: args.tls_ca_file.as_ref().map(|p| p.display().to_string()),
        username,
        password: password.clone(),
        sieve,
        default: names.is_empty(),
        source: match (&preset, &found, args.host.is_some()) {
            (Some(p), _, false) => format!("{} settings", p.provider),
            (None, Some(f), false) => describe(f),
            _ => "settings given by hand".into(),
        },
    };
    let block = discover::account_block(&new);
    let text = discover::append_block(existing.as_deref(), &block);
    // What will be written must load: checked before anything is touched.
    let cfg = crate::config::parse(&text, &path).map_err(|e| Error::Usage(e.0))?;
    let account = cfg
        .account(Some(&name))
        .map_err(|e| Error::Usage(e.0))?
        .clone();

    // The password: asked for (keyring) or fetched as configured, then one
    // login before anything is stored or written.
    let secret = if password == Password::Keyring {
        if !interactive {
            return Err(Error::Usage(
                "--keyring asks for the password: run it on a terminal, or use --password-command / --password-env".into(),
            ));
        }
        let pw = rpassword::prompt_password(format!(
            "Password for {} ({}): ",
            account.username,
            crate::config::endpoint(&account.imap.host, account.imap.port)
        ))
        .map_err(|e| Error::Runtime(format!("cannot read the password: {e}")))?;
        if pw.is_empty() {
            return Err(Error::Usage("no password given; nothing written".into()));
        }
        Some(crate::secret::Secret::new(pw))
    } else if args.no_check {
        None
    } else {
        Some(super::common::secret(&account)?)
    };
    if !args.no_check {
        if let Some(s) = &secret {
            let rt = super::common::runtime()?;
            rt.block_on(async {
                let imap = crate::imap::connect(&account, s)
                    .await
                    .map_err(|e| Error::Runtime(format!("{e}; nothing was written")))?;
                imap.logout().await;
                Ok::<_, Error>(())
            })?;
            super::common::info(&format!(
                "Logged in to {} as {}.",
                crate::config::endpoint(&account.imap.host, account.imap.port),
                account.username
            ));
        }
    }
    if let (Password::Keyring, Some(s)) = (&password, &secret) {
        crate::secret::store(&account, s).map_err(Error::Runtime)?;
        super::common::info("Stored the password in the keyring.");
    }
    write_config(&path, &text)?;
    println!("Added account \"{name}\" to {}.", path.display());
    if args.no_check {
        return Ok(ExitCode::SUCCESS);
    }
    if super::common::verbosity() > Verbosity::Quiet {
        println!();
    }
    super::account::check_account(Some(&name), false, Some(&path))
}

/// Write the config: a new file private (0600), an existing one in place
/// (its mode kept), through a temporary file renamed over it.
fn write_config(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::Runtime(format!("cannot create {}: {e}", d.display())))?;
    }
    let tmp = path.with_extension("toml.new");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", tmp.display())))?;
    // A temp file left by an interrupted run keeps its mode when reopened.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", tmp.display())))?;
    }
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", tmp.display())))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))
}
