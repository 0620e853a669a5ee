//! Installing the policy on the server over ManageSieve (RFC 5804):
//! `install`, `uninstall` and `status`, each returning a report that is
//! `Serialize` (for `--json`) and `Display` (for people).
//!
//! The policy that keeps the user's own active script working: it runs
//! after ours through an `include` wrapper (RFC 6609), or, on a server
//! without `include`, in a copy of it with our rules in a marked block at
//! the top. The user's script itself is never changed; what was active
//! before is kept in a 0600 state file so that `uninstall` re-activates it.

use crate::clean::Dirs;
use crate::config::Account;
use crate::managesieve::{wrapper, wrapper_of, Installed, Session, RULES, SCRIPT, WRAPPER};
use crate::net::NetError;
use crate::secret::Secret;
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why an install, uninstall or status failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManageError {
    /// The configuration or the user's rules (exit status 2).
    Config(String),
    /// The IMAP or ManageSieve server, or the network (exit status 1).
    Net(NetError),
    /// Anything else: the generated script, the local state (exit status 1).
    Failed(String),
}

impl fmt::Display for ManageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManageError::Config(m) | ManageError::Failed(m) => f.write_str(m),
            ManageError::Net(e) => write!(f, "{e}"),
        }
    }
}

impl From<NetError> for ManageError {
    fn from(e: NetError) -> Self {
        ManageError::Net(e)
    }
}

/// The sentences of the script checks (generation, merge).
impl From<String> for ManageError {
    fn from(m: String) -> Self {
        ManageError::Failed(m)
    }
}

impl std::error::Error for ManageError {}

impl From<crate::clean::CleanError> for ManageError {
    fn from(e: crate::clean::CleanError) -> Self {
        match e {
            crate::clean::CleanError::Config(m) => ManageError::Config(m),
            crate::clean::CleanError::Imap(e) => ManageError::Net(e),
            crate::clean::CleanError::Io(m) => ManageError::Failed(m),
        }
    }
}

/// What `install` did: the script uploaded and how it was activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallReport {
    /// The policy script's name on the server ([`SCRIPT`]).
    pub script: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// How many sent Message-IDs it carries.
    pub sent_ids: usize,
    /// What the script cannot see on this server, one sentence each
    /// ([`crate::sieve::Script::limits`]): empty on Dovecot.
    pub limits: Vec<String>,
    /// How many older sent Message-IDs did not fit the size limit.
    pub ids_left_out: usize,
    /// The size limit it was generated for, in bytes.
    pub max_size: usize,
    /// The server stated that limit (it refused a larger script).
    pub max_size_from_server: bool,
    pub activation: Activation,
}

/// How the policy was made to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum Activation {
    /// The user's rules were uploaded as [`RULES`] and [`WRAPPER`] runs the
    /// policy, then them, then `kept`: the user's own script that was
    /// active before (through `include`). `displaced` is that script when
    /// it no longer runs (a server without `include`, where the active
    /// script is a copy of the rules with the policy's block at the top).
    WithRules {
        kept: Option<String>,
        displaced: Option<String>,
    },
    /// The policy already ran (through `through`): the script was replaced;
    /// `marked_copy` when the active script is our marked copy of the
    /// user's script, refreshed too.
    Updated { through: String, marked_copy: bool },
    /// No script was active: [`SCRIPT`] is.
    Activated,
    /// The user's script `user` was active: [`WRAPPER`] now runs the policy
    /// and then it, through `include` or (`include` false) as a marked copy
    /// of it; `backup` is where its text was saved.
    Wrapped {
        user: String,
        include: bool,
        backup: PathBuf,
    },
}

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Uploaded \"{}\" ({} bytes, {} sent Message-IDs).",
            self.script, self.bytes, self.sent_ids
        )?;
        for limit in &self.limits {
            writeln!(f, "What it cannot see on this server: {limit}.")?;
        }
        if self.ids_left_out > 0 {
            let whose = if self.max_size_from_server {
                "the server's limit"
            } else {
                "the limit"
            };
            writeln!(
                f,
                "{} older sent Message-IDs were left out to fit {whose} of {} bytes: the server files a bounce or auto-reply to one of those older messages into quarantine, where the agent (clean, watch) would keep it.",
                self.ids_left_out, self.max_size
            )?;
        }
        match &self.activation {
            Activation::WithRules { kept, displaced } => {
                if let Some(user) = displaced {
                    writeln!(f, "Your previously active script \"{user}\" no longer runs (the server has no Sieve \"include\" to run it after your rules); `backscatter sieve uninstall` re-activates it.")?;
                }
                match kept {
                    Some(user) => writeln!(f, "Uploaded your rules as \"{RULES}\" and activated \"{WRAPPER}\": the backscatter policy first, then your rules, then your \"{user}\" (unchanged)."),
                    None => writeln!(f, "Uploaded your rules as \"{RULES}\" and activated \"{WRAPPER}\": the backscatter policy first, then your rules."),
                }
            }
            Activation::Updated {
                through,
                marked_copy,
            } => writeln!(
                f,
                "Already active (through \"{through}\"{}): updated.",
                if *marked_copy {
                    ", a marked copy of your script"
                } else {
                    ""
                }
            ),
            Activation::Activated => {
                writeln!(f, "Activated \"{SCRIPT}\" (no script was active).")
            }
            Activation::Wrapped {
                user,
                include,
                backup,
            } => {
                let how = if *include {
                    format!("runs \"{SCRIPT}\" and then your \"{user}\" (unchanged")
                } else {
                    format!("is a copy of your \"{user}\" with backscatter's rules in a marked block at the top (the server has no \"include\"; your \"{user}\" is left as it was")
                };
                writeln!(
                    f,
                    "Activated \"{WRAPPER}\", which {how}; a backup is in {}).",
                    backup.display()
                )
            }
        }
    }
}

/// What `uninstall` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UninstallReport {
    /// The policy was active (directly or through [`WRAPPER`]).
    pub was_active: bool,
    /// The user's script re-activated (None: none was active before, or
    /// the policy was not active).
    pub reactivated: Option<String>,
    /// The marked copy of the user's script had been edited after install:
    /// that edited version (without our block) is saved in this file.
    pub edited_copy: Option<PathBuf>,
    /// The scripts deleted, in order.
    pub deleted: Vec<String>,
}

impl UninstallReport {
    /// A warning for the user, if the edited copy was saved aside.
    pub fn warning(&self) -> Option<String> {
        let keep = self.edited_copy.as_ref()?;
        let back = self.reactivated.as_deref().unwrap_or_default();
        Some(format!("the active copy of \"{back}\" was edited after install; that edited version (without backscatter's block) is saved in {}", keep.display()))
    }
}

impl fmt::Display for UninstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.was_active {
            match &self.reactivated {
                None => writeln!(f, "Deactivated backscatter (no script was active before).")?,
                Some(back) => writeln!(f, "Re-activated your \"{back}\".")?,
            }
        }
        for n in &self.deleted {
            writeln!(f, "Deleted \"{n}\".")?;
        }
        Ok(())
    }
}

/// What `status` found: the server's scripts and, when ours is active, how
/// old its sent Message-ID list is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SieveStatus {
    pub scripts: Vec<ScriptEntry>,
    /// The active script's name (None: no script is active).
    pub active: Option<String>,
    /// backscatter's script runs (directly or through its include wrapper).
    pub backscatter_active: bool,
    /// When the active script's ID list was generated (as its header says).
    pub generated: Option<String>,
    /// How many sent Message-IDs the active script carries.
    pub sent_ids: Option<usize>,
}

/// One script on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptEntry {
    pub name: String,
    pub active: bool,
}

impl fmt::Display for SieveStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.scripts {
            writeln!(f, "  {}{}", if s.active { "* " } else { "  " }, s.name)?;
        }
        match self.active.as_deref() {
            Some(n) if self.backscatter_active => writeln!(
                f,
                "backscatter is active (through \"{n}\"); its ID list was generated {} ({} sent Message-IDs).",
                self.generated.as_deref().unwrap_or("?"),
                self.sent_ids.map_or_else(|| "?".to_string(), |n| n.to_string())
            ),
            Some(n) => writeln!(f, "backscatter is not active; \"{n}\" is."),
            None => writeln!(f, "No script is active."),
        }
    }
}

/// The install state file of an account (0600 JSON, [`Installed`]).
pub fn state_file(dirs: &Dirs, a: &Account) -> PathBuf {
    crate::paths::account_file(&dirs.state, "sieve", &a.name, "json")
}

fn read_state(path: &Path) -> Installed {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Beside the state file: `STATE.NAME.sieve` with `/` and `\` made `_`.
fn beside(state_path: &Path, ext: &str) -> PathBuf {
    state_path.with_extension(ext.replace(['/', '\\'], "_"))
}

/// The sent lists from the account's Sent mailboxes (through the sent-index
/// cache), the account with its mailbox names as the server spells them
/// (the script files into the same quarantine the agent moves to), and the
/// server's personal namespace (for the names in the user's rules).
pub async fn sent_lists(
    a: &Account,
    secret: &Secret,
    dirs: &Dirs,
) -> Result<
    (
        crate::sieve::SentLists,
        Account,
        backscatter_policy::names::Namespace,
    ),
    ManageError,
> {
    let mut imap = crate::imap::connect(a, secret).await?;
    let a = imap.resolve_account(a);
    let ns = imap.namespace().clone();
    let (index, _) = crate::clean::sent_index(&mut imap, &a, dirs).await?;
    imap.logout().await;
    Ok((
        crate::sieve::SentLists::from_index(&index, crate::clock::now()),
        a,
        ns,
    ))
}

/// The account's own rules, for the server: read from its `rules` file and
/// checked with the agent's engine (nothing that sends or deletes mail).
/// Errors ([`ManageError::Config`]) when the account has none (`config`
/// names the file to add them to), they do not compile or are refused,
/// they test an environment item only the agent sets
/// (`vnd.backscatter.verdict`: see [`backscatter_policy::rules::for_server`]),
/// or they `include` other scripts (not carried over yet).
pub fn server_rules(a: &Account, config: &Path) -> Result<String, ManageError> {
    let Some(p) = a.rules.clone() else {
        return Err(ManageError::Config(format!(
            "account \"{}\" has no rules: add rules = \"PATH.sieve\" to [accounts.{}] in {}",
            a.name,
            a.name,
            config.display()
        )));
    };
    crate::filter::load_rules(&p).map_err(ManageError::Config)?;
    let text = std::fs::read_to_string(&p)
        .map_err(|e| ManageError::Config(format!("cannot read {}: {e}", p.display())))?;
    // The agent drops a computed \Deleted at run time; Pigeonhole would
    // store it: a flag computed on the server is refused outright.
    if let Some((line, command)) = crate::rules::variable_flags(&text).into_iter().next() {
        return Err(ManageError::Config(format!(
            "{}: line {line}: {command} takes a flag computed when the script runs (a variable, a match or an encoded character), which could become \\Deleted on the server, where nothing can stop it: write the flags out, or leave out --rules",
            p.display()
        )));
    }
    backscatter_policy::rules::for_server(&text, &p.display().to_string(), str::to_string)
        .map_err(ManageError::Config)?;
    if crate::sieve::requires_of(&text)
        .iter()
        .any(|r| r == "include")
    {
        return Err(ManageError::Config(format!(
            "{}: rules that include other scripts cannot be installed on the server yet; inline them or leave out --rules",
            p.display()
        )));
    }
    Ok(text)
}

/// Generate the policy from the account's sent mail, upload it as
/// [`SCRIPT`] and make it run: alone, before the user's active script, or
/// (with `rules`, from [`server_rules`]) before the user's rules uploaded
/// as [`RULES`]. Every script is checked by the server (CHECKSCRIPT and
/// HAVESPACE) before it is put. Saves the install state (0600) in
/// `dirs.state` and, when the user's script was active, a backup of it.
pub async fn install(
    a: &Account,
    secret: &Secret,
    dirs: &Dirs,
    rules: Option<&str>,
) -> Result<InstallReport, ManageError> {
    let (lists, a, ns) = sent_lists(a, secret, dirs).await?;
    // The rules' mailbox names as the server spells them, as `filter`
    // files them.
    let rules = rules
        .map(|r| {
            backscatter_policy::rules::for_server(r, RULES, |n| {
                backscatter_policy::names::resolve(n, &ns)
            })
        })
        .transpose()
        .map_err(ManageError::Config)?;
    let rules = rules.as_deref();
    let state_path = state_file(dirs, &a);
    let mut s = Session::connect(&a, secret).await?;
    let scripts = s.list().await?;
    refuse_foreign_namesakes(&mut s, &scripts, "install").await?;
    let active = scripts.iter().find(|(_, act)| *act).map(|(n, _)| n.clone());
    let uploaded = crate::managesieve::upload_script(&mut s, &a, &lists).await?;
    let script = &uploaded.script;
    let mut state = read_state(&state_path);
    let activation = match rules {
        Some(rules) => {
            activate_with_rules(&mut s, script, rules, active.as_deref(), &scripts).await?
        }
        None => activate(&mut s, script, active.as_deref(), &state_path).await?,
    };
    match &activation {
        Activation::WithRules { kept, displaced } => {
            state.original_active = kept.clone().or_else(|| displaced.clone());
        }
        Activation::Updated { .. } => {}
        Activation::Activated => state.original_active = None,
        Activation::Wrapped { user, .. } => state.original_active = Some(user.clone()),
    }
    state.installed_at = crate::clock::now();
    let bytes = serde_json::to_vec(&state).map_err(|e| ManageError::Failed(e.to_string()))?;
    if let Some(d) = state_path.parent() {
        let _ = crate::paths::private_dir(d);
    }
    crate::paths::write_private_atomic(&state_path, &bytes)
        .map_err(|e| ManageError::Failed(format!("cannot save the install state: {e}")))?;
    s.logout().await;
    Ok(InstallReport {
        script: SCRIPT.to_string(),
        bytes: script.text.len(),
        sent_ids: script.ids_included,
        limits: script.limits.clone(),
        ids_left_out: script.ids_dropped,
        max_size: uploaded.limit,
        max_size_from_server: uploaded.limit_from_server,
        activation,
    })
}

/// Check, make room for, put and activate [`WRAPPER`] with `text`.
async fn put_active_wrapper(s: &mut Session, text: &str) -> Result<(), ManageError> {
    s.check(text).await?;
    s.have_space(WRAPPER, text.len()).await?;
    s.put(WRAPPER, text).await?;
    Ok(s.set_active(WRAPPER).await?)
}

/// `install` with the user's rules: [`RULES`] after the policy.
async fn activate_with_rules(
    s: &mut Session,
    script: &crate::sieve::Script,
    rules: &str,
    active: Option<&str>,
    scripts: &[(String, bool)],
) -> Result<Activation, ManageError> {
    // The user's own script that stops running: the active one, or the
    // one our wrapper ran before (an earlier install without --rules),
    // read before the wrapper is replaced.
    let displaced = match active {
        Some(n) if n == WRAPPER => crate::managesieve::original_of_wrapper(s, scripts)
            .await
            .map_err(ManageError::Failed)?
            .filter(|u| u != RULES),
        Some(n) if n == SCRIPT => None,
        other => other.map(str::to_string),
    };
    s.check(rules).await?;
    s.have_space(RULES, rules.len()).await?;
    s.put(RULES, rules).await?;
    if crate::sieve::offers(&s.extensions, "include") {
        // The user's own script keeps running, after their rules.
        let mut run = vec![RULES];
        run.extend(displaced.as_deref());
        put_active_wrapper(s, &wrapper_of(&run)).await?;
        return Ok(Activation::WithRules {
            kept: displaced,
            displaced: None,
        });
    }
    let active_text = crate::sieve::merge(rules, script).map_err(|e| {
        ManageError::Failed(format!("the server has no Sieve \"include\" and backscatter cannot add its rules to a copy of your rules: {e}"))
    })?;
    put_active_wrapper(s, &active_text).await?;
    Ok(Activation::WithRules {
        kept: None,
        displaced,
    })
}

/// `install` without rules: the policy alone, or before the user's script.
async fn activate(
    s: &mut Session,
    script: &crate::sieve::Script,
    active: Option<&str>,
    state_path: &Path,
) -> Result<Activation, ManageError> {
    match active {
        Some(n) if n == SCRIPT || n == WRAPPER => {
            let marked_copy = crate::managesieve::refresh_copy(s, script).await?;
            Ok(Activation::Updated {
                through: n.to_string(),
                marked_copy,
            })
        }
        None => {
            s.set_active(SCRIPT).await?;
            Ok(Activation::Activated)
        }
        Some(user) => {
            let theirs = s.get(user).await?;
            let backup = beside(state_path, &format!("{user}.sieve"));
            if let Some(d) = backup.parent() {
                let _ = crate::paths::private_dir(d);
            }
            crate::paths::write_private_atomic(&backup, theirs.as_bytes())
                .map_err(|e| ManageError::Failed(format!("cannot back up your script: {e}")))?;
            let include = crate::sieve::offers(&s.extensions, "include");
            let active_text = if include {
                wrapper(user)
            } else {
                // No include: a copy of theirs with our block first.
                crate::sieve::merge(&theirs, script).map_err(|e| {
                    ManageError::Failed(format!("the server has no Sieve \"include\" and backscatter cannot add its rules to a copy of \"{user}\": {e}; \"{SCRIPT}\" is uploaded but not activated"))
                })?
            };
            put_active_wrapper(s, &active_text).await?;
            Ok(Activation::Wrapped {
                user: user.to_string(),
                include,
                backup,
            })
        }
    }
}

/// Did backscatter write this script? Its policy script and its wrapper
/// open with a `# backscatter:` comment; a marked copy of the user's
/// script holds [`crate::sieve::BLOCK_BEGIN`].
fn written_by_us(text: &str) -> bool {
    text.trim_start().starts_with("# backscatter:") || text.contains(crate::sieve::BLOCK_BEGIN)
}

/// A script of the user's own that happens to carry one of our names
/// ([`SCRIPT`], [`WRAPPER`]) is never replaced or deleted: refuse, with
/// nothing changed, and say how to go on.
async fn refuse_foreign_namesakes(
    s: &mut Session,
    scripts: &[(String, bool)],
    what: &str,
) -> Result<(), ManageError> {
    for name in [SCRIPT, WRAPPER] {
        if scripts.iter().any(|(n, _)| n == name) && !written_by_us(&s.get(name).await?) {
            return Err(ManageError::Failed(format!(
                "the server already has a Sieve script named \"{name}\" that backscatter did not write; {what} would replace or delete it, so nothing was changed: rename that script (for example in your webmail's filter settings) and run `backscatter sieve {what}` again"
            )));
        }
    }
    Ok(())
}

/// Remove the policy ([`WRAPPER`] and [`SCRIPT`]) and re-activate what was
/// active before install: from the install state, or, when that is gone
/// (another machine, a wiped state directory), the script the wrapper
/// names or the one its marked copy was made from. Changes made to the
/// marked copy since install (e.g. in a webmail's filter editor) are saved
/// beside the state file ([`UninstallReport::edited_copy`]).
pub async fn uninstall(
    a: &Account,
    secret: &Secret,
    dirs: &Dirs,
) -> Result<UninstallReport, ManageError> {
    let state_path = state_file(dirs, a);
    let mut s = Session::connect(a, secret).await?;
    let scripts = s.list().await?;
    refuse_foreign_namesakes(&mut s, &scripts, "uninstall").await?;
    let active = scripts.iter().find(|(_, act)| *act).map(|(n, _)| n.clone());
    let state = read_state(&state_path);
    let mut report = UninstallReport {
        was_active: matches!(active.as_deref(), Some(n) if n == SCRIPT || n == WRAPPER),
        reactivated: None,
        edited_copy: None,
        deleted: Vec::new(),
    };
    if report.was_active {
        let mut back = state.original_active.clone().unwrap_or_default();
        if back.is_empty() && active.as_deref() == Some(WRAPPER) {
            back = crate::managesieve::original_of_wrapper(&mut s, &scripts)
                .await?
                .unwrap_or_default();
        }
        if active.as_deref() == Some(WRAPPER) && !back.is_empty() {
            let copy = s.get(WRAPPER).await?;
            if copy.contains(crate::sieve::BLOCK_BEGIN) {
                let edited = crate::sieve::unmerge(&copy);
                // The copy was made of the user's rules (`install --rules`)
                // or of their script.
                let source = if scripts.iter().any(|(x, _)| x == RULES) {
                    RULES
                } else {
                    back.as_str()
                };
                let original = s.get(source).await?;
                if edited != original {
                    let keep = beside(&state_path, &format!("{back}.edited.sieve"));
                    crate::paths::write_private_atomic(&keep, edited.as_bytes()).map_err(|e| {
                        ManageError::Failed(format!("cannot save your edited script: {e}"))
                    })?;
                    report.edited_copy = Some(keep);
                }
            }
        }
        s.set_active(&back).await?;
        report.reactivated = (!back.is_empty()).then_some(back);
    }
    // The user's rules as `install --rules` uploaded them (their own file
    // is where they came from) go too.
    for n in [WRAPPER, SCRIPT, RULES] {
        if scripts.iter().any(|(x, _)| x == n) && Some(n) != report.reactivated.as_deref() {
            s.delete(n).await?;
            report.deleted.push(n.to_string());
        }
    }
    let _ = std::fs::remove_file(&state_path);
    s.logout().await;
    Ok(report)
}

/// The server's scripts, which is active, and, when the policy runs, when
/// its sent Message-ID list was generated and how many IDs it carries.
pub async fn status(a: &Account, secret: &Secret) -> Result<SieveStatus, ManageError> {
    let mut s = Session::connect(a, secret).await?;
    let scripts = s.list().await?;
    let active = scripts.iter().find(|(_, act)| *act).map(|(n, _)| n.clone());
    let mut status = SieveStatus {
        scripts: scripts
            .iter()
            .map(|(name, active)| ScriptEntry {
                name: name.clone(),
                active: *active,
            })
            .collect(),
        active: active.clone(),
        backscatter_active: false,
        generated: None,
        sent_ids: None,
    };
    if active
        .as_deref()
        .is_some_and(|n| n == SCRIPT || n == WRAPPER)
    {
        let text = s.get(SCRIPT).await?;
        status.backscatter_active = true;
        status.generated = text
            .lines()
            .next()
            .and_then(|l| l.rsplit_once("generated "))
            .map(|x| x.1.trim_end_matches('.').to_string());
        status.sent_ids = crate::sieve::ids_in(&text);
    }
    s.logout().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_reports_read_as_before() {
        let r = InstallReport {
            script: SCRIPT.into(),
            bytes: 1200,
            sent_ids: 3,
            limits: Vec::new(),
            ids_left_out: 0,
            max_size: 1 << 20,
            max_size_from_server: false,
            activation: Activation::Wrapped {
                user: "mine".into(),
                include: true,
                backup: PathBuf::from("/s/sieve/a.mine.sieve"),
            },
        };
        assert_eq!(
            r.to_string(),
            "Uploaded \"backscatter\" (1200 bytes, 3 sent Message-IDs).\nActivated \"backscatter-main\", which runs \"backscatter\" and then your \"mine\" (unchanged; a backup is in /s/sieve/a.mine.sieve).\n"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"how\":\"wrapped\""), "{json}");
        let r = InstallReport {
            activation: Activation::Updated {
                through: WRAPPER.into(),
                marked_copy: true,
            },
            ..r
        };
        assert!(r.to_string().ends_with(
            "Already active (through \"backscatter-main\", a marked copy of your script): updated.\n"
        ));
        let r = InstallReport {
            ids_left_out: 366,
            max_size: 32768,
            max_size_from_server: true,
            ..r
        };
        assert!(r.to_string().contains("\n366 older sent Message-IDs were left out to fit the server's limit of 32768 bytes: the server files a bounce or auto-reply to one of those older messages into quarantine, where the agent (clean, watch) would keep it.\n"), "{r}");
    }

    #[test]
    fn uninstall_report_says_what_was_undone() {
        let mut r = UninstallReport {
            was_active: true,
            reactivated: Some("mine".into()),
            edited_copy: None,
            deleted: vec![WRAPPER.into(), SCRIPT.into()],
        };
        assert_eq!(
            r.to_string(),
            "Re-activated your \"mine\".\nDeleted \"backscatter-main\".\nDeleted \"backscatter\".\n"
        );
        assert_eq!(r.warning(), None);
        r.edited_copy = Some(PathBuf::from("/s/a.mine.edited.sieve"));
        assert!(r
            .warning()
            .unwrap()
            .contains("\"mine\" was edited after install"));
        r.was_active = false;
        r.deleted.clear();
        assert_eq!(r.to_string(), "");
    }

    #[test]
    fn state_files_sit_beside_each_other() {
        let p = Path::new("/s/sieve/alice.json");
        assert_eq!(
            beside(p, "a/b.sieve"),
            Path::new("/s/sieve/alice.a_b.sieve")
        );
    }
}
