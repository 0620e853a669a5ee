//! A quirk proxy: a line-based IMAP relay in front of a test server that
//! makes it behave like servers that say NO where Dovecot says OK.
//!
//! Each client connection gets its own connection to the upstream server
//! (plain IMAP on loopback); both directions are relayed line by line, and
//! literals (`{n}` / `{n+}` at the end of a line) are passed through as
//! bytes, never read as lines. What the proxy can do, chosen by
//! [`Rules`] that a test may change while connections are open:
//!
//! - answer a command `TAG NO [CODE] text` (or BAD) without passing it on
//!   ([`Refusal`]: matched by the command's words after the tag, optionally
//!   only the first `times` matches — a transient refusal);
//! - hide capabilities (from `* CAPABILITY` lines and `[CAPABILITY ...]`
//!   response codes), as servers without MOVE or IDLE;
//! - drop untagged `EXISTS`/`RECENT` while the client IDLEs (Courier, UW
//!   imapd, GNU Mailutils push nothing);
//! - run a test's action before passing a command on ([`Hook`]): another
//!   client's move or expunge lands exactly between what the client
//!   decided and the command it sends, so a race is played without
//!   depending on timing;
//! - hold each `UID MOVE`'s tagged completion until the next MOVE's
//!   untagged `COPYUID` has passed ([`Rules::late_move_completions`]), as
//!   Dovecot answers MOVEs sent in one flight: it runs them side by side.
//!
//! The proxy runs on a tokio runtime of its own in a background thread,
//! so tests stay blocking. It is a test tool, not a general IMAP proxy:
//! only a command whose first line holds no literal can be refused.

use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A command the proxy answers itself.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The command's first words after the tag, case-insensitive
    /// (`"UID STORE"`, `"UID EXPUNGE"`, `"LOGIN"`, `"UID SEARCH"`).
    pub command: String,
    /// Only commands whose text (after the tag) contains this too,
    /// case-insensitive (`"\\Deleted"`); empty: any.
    pub containing: String,
    /// `NO` or `BAD`.
    pub status: String,
    /// The response code without brackets (`CANNOT`, `UNAVAILABLE`);
    /// empty: none.
    pub code: String,
    /// The human-readable text after the code.
    pub text: String,
    /// Refuse only this many matching commands, then pass them on;
    /// `None`: always.
    pub times: Option<usize>,
}

impl Refusal {
    /// `TAG NO [code] text` to every command starting with `command`.
    pub fn no(command: &str, code: &str, text: &str) -> Refusal {
        Refusal {
            command: command.to_string(),
            containing: String::new(),
            status: "NO".into(),
            code: code.to_string(),
            text: text.to_string(),
            times: None,
        }
    }

    /// Only commands that also contain `s`.
    pub fn containing(mut self, s: &str) -> Refusal {
        self.containing = s.to_string();
        self
    }

    /// Only the first `n` matching commands.
    pub fn times(mut self, n: usize) -> Refusal {
        self.times = Some(n);
        self
    }

    fn matches(&self, after_tag: &str) -> bool {
        let upper = after_tag.to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        let want: Vec<String> = self
            .command
            .split_whitespace()
            .map(|w| w.to_ascii_uppercase())
            .collect();
        words.len() >= want.len()
            && want.iter().zip(&words).all(|(a, b)| a == b)
            && upper.contains(&self.containing.to_ascii_uppercase())
    }

    fn reply(&self, tag: &str) -> String {
        let code = if self.code.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.code)
        };
        format!("{tag} {} {code}{}\r\n", self.status, self.text)
    }
}

/// An action run before a command is passed on to the server (on a
/// blocking thread; the command waits for it). It gets the command's text
/// after the tag, e.g. `UID MOVE 4:9 "Backscatter"`.
#[derive(Clone)]
pub struct Hook {
    /// The command's first words after the tag, case-insensitive.
    pub command: String,
    /// Only commands whose text also contains this, case-insensitive;
    /// empty: any.
    pub containing: String,
    /// Run for only this many matching commands; `None`: always.
    pub times: Option<usize>,
    pub action: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Hook {
    /// Run `action` before every command starting with `command`.
    pub fn before(command: &str, action: impl Fn(&str) + Send + Sync + 'static) -> Hook {
        Hook {
            command: command.to_string(),
            containing: String::new(),
            times: None,
            action: Arc::new(action),
        }
    }

    /// Only before commands that also contain `s`.
    pub fn containing(mut self, s: &str) -> Hook {
        self.containing = s.to_string();
        self
    }

    /// Only before the first `n` matching commands.
    pub fn times(mut self, n: usize) -> Hook {
        self.times = Some(n);
        self
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("command", &self.command)
            .field("containing", &self.containing)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

/// The UIDs of a UID set in IMAP syntax (`1,3:5`), as a command carries
/// it; `*` and anything unreadable are left out.
pub fn uids_of(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a.min(b)..=a.max(b));
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// What the proxy does now; shared with the relays, changeable at any
/// time through [`QuirkProxy::set`].
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub refuse: Vec<Refusal>,
    /// Actions run before matching commands are passed on.
    pub before: Vec<Hook>,
    /// Capability names to hide (`MOVE`, `IDLE`), case-insensitive.
    pub hide_capabilities: Vec<String>,
    /// Drop untagged EXISTS/RECENT while the client IDLEs.
    pub silent_idle: bool,
    /// Hold the tagged completion of each `UID MOVE` until the next
    /// untagged `[COPYUID ...]` has been passed on (it is then sent right
    /// after it), or until another tagged line comes (it is sent before
    /// it), or the server has been silent for 2 s. With several MOVEs
    /// in flight the client thus sees the second MOVE's COPYUID before the
    /// first MOVE's OK, which is what Dovecot 2.3 does under load.
    pub late_move_completions: bool,
    /// Pass the server's responses on at most this many bytes a second
    /// (a slow link); `None`: as fast as they come.
    pub down_rate: Option<u64>,
}

/// What the proxy saw and did.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every command's first line (LOGIN arguments left out), in order.
    pub commands: Vec<String>,
    /// The commands answered with a refusal.
    pub refused: Vec<String>,
    /// Untagged responses dropped during IDLE.
    pub dropped: usize,
    /// Connections accepted.
    pub connections: usize,
    /// MOVE completions held back and sent after a later MOVE's COPYUID
    /// ([`Rules::late_move_completions`]).
    pub reordered: usize,
    /// Bytes of the server's responses passed on to clients.
    pub down_bytes: u64,
}

struct Shared {
    rules: Rules,
    /// Refusals made so far, per rule index (for `times`).
    used: Vec<usize>,
    /// Hooks run so far, per hook index (for `times`).
    hooked: Vec<usize>,
    seen: Seen,
    /// Tags of the `UID MOVE` commands passed on.
    moves: std::collections::HashSet<String>,
}

/// A running proxy; it stops when dropped.
pub struct QuirkProxy {
    /// The port clients connect to (127.0.0.1).
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl QuirkProxy {
    /// Start a proxy on a free loopback port in front of
    /// `127.0.0.1:upstream`.
    pub fn start(upstream: u16, rules: Rules) -> QuirkProxy {
        let std_listener = StdListener::bind("127.0.0.1:0").expect("bind the quirk proxy");
        let port = std_listener.local_addr().expect("proxy address").port();
        std_listener.set_nonblocking(true).expect("non-blocking");
        let shared = Arc::new(Mutex::new(Shared {
            used: vec![0; rules.refuse.len()],
            hooked: vec![0; rules.before.len()],
            rules,
            seen: Seen::default(),
            moves: Default::default(),
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the quirk proxy");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                tokio::select! {
                    _ = accept_loop(listener, upstream, sh) => {}
                    _ = rx => {}
                }
            });
        });
        QuirkProxy {
            port,
            shared,
            stop: Some(tx),
        }
    }

    /// Replace the rules (for connections already open too).
    pub fn set(&self, rules: Rules) {
        let mut s = self.shared.lock().unwrap();
        s.used = vec![0; rules.refuse.len()];
        s.hooked = vec![0; rules.before.len()];
        s.rules = rules;
    }

    /// Read what the proxy saw.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.shared.lock().unwrap().seen)
    }

    /// How many commands were refused so far.
    pub fn refused(&self) -> usize {
        self.seen(|s| s.refused.len())
    }
}

impl Drop for QuirkProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: u16, shared: Arc<Mutex<Shared>>) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
            continue;
        };
        shared.lock().unwrap().seen.connections += 1;
        tokio::spawn(relay(client, server, shared.clone()));
    }
}

/// The byte count of a literal announced at the end of `line` (`{n}` or
/// `{n+}` before CRLF), if any.
fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"\r\n").unwrap_or(line);
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

/// Read one line (up to LF); `None` at the end of the stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    match r.read_until(b'\n', &mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

type Half = tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>;

/// Write whole (each direction's half is shared: the proxy's own refusals
/// go to the client between the server's responses).
async fn write(w: &Half, bytes: &[u8]) -> Option<()> {
    w.lock().await.write_all(bytes).await.ok()
}

/// Count `n` bytes passed on to the client and, under
/// [`Rules::down_rate`], sleep as long as the link would take to carry
/// them after what it carries already (`busy_until`; idle time earns no
/// credit).
async fn pace(shared: &Mutex<Shared>, busy_until: &mut tokio::time::Instant, n: usize) {
    let rate = {
        let mut s = shared.lock().unwrap();
        s.seen.down_bytes += n as u64;
        s.rules.down_rate
    };
    if let Some(rate) = rate.filter(|r| *r > 0) {
        let start = (*busy_until).max(tokio::time::Instant::now());
        *busy_until = start + std::time::Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(*busy_until).await;
    }
}

/// Copy `n` bytes of a server's literal to the client, paced ([`pace`]).
async fn pass_literal_down<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    w: &Half,
    n: usize,
    shared: &Mutex<Shared>,
    busy_until: &mut tokio::time::Instant,
) -> Option<()> {
    let mut left = n;
    let mut buf = vec![0u8; 16 * 1024];
    while left > 0 {
        let k = left.min(buf.len());
        r.read_exact(&mut buf[..k]).await.ok()?;
        write(w, &buf[..k]).await?;
        pace(shared, busy_until, k).await;
        left -= k;
    }
    Some(())
}

/// Copy `n` bytes of a literal from `r` to `w`.
async fn pass_literal<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    w: &Half,
    n: usize,
) -> Option<()> {
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).await.ok()?;
    write(w, &buf).await
}

async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Mutex<Shared>>) {
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let client_w = Arc::new(Half::new(client_w));
    let server_w = Arc::new(Half::new(server_w));
    let idling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = {
        let (client_w, server_w, shared, idling) = (
            client_w.clone(),
            server_w.clone(),
            shared.clone(),
            idling.clone(),
        );
        async move {
            let mut r = BufReader::new(client_r);
            // Is the next line the start of a command (not the rest of
            // one after a literal)?
            let mut start = true;
            while let Some(line) = read_line(&mut r).await {
                let lit = literal_len(&line);
                if start && lit.is_none() {
                    let text = String::from_utf8_lossy(&line).trim_end().to_string();
                    if text.eq_ignore_ascii_case("DONE") {
                        idling.store(false, std::sync::atomic::Ordering::SeqCst);
                    } else if let Some((tag, rest)) = text.split_once(' ') {
                        let reply = {
                            let mut s = shared.lock().unwrap();
                            let shown = if rest.to_ascii_uppercase().starts_with("LOGIN") {
                                "LOGIN …".to_string()
                            } else {
                                rest.to_string()
                            };
                            s.seen.commands.push(shown.clone());
                            if rest.to_ascii_uppercase().starts_with("UID MOVE ") {
                                s.moves.insert(tag.to_string());
                            }
                            let hit = s.rules.refuse.iter().position(|f| f.matches(rest));
                            let hit = hit
                                .filter(|&i| s.rules.refuse[i].times.is_none_or(|n| s.used[i] < n));
                            hit.map(|i| {
                                s.used[i] += 1;
                                s.seen.refused.push(shown);
                                s.rules.refuse[i].reply(tag)
                            })
                        };
                        if let Some(reply) = reply {
                            if write(&client_w, reply.as_bytes()).await.is_none() {
                                break;
                            }
                            continue;
                        }
                        let hook = {
                            let mut s = shared.lock().unwrap();
                            let want = |h: &Hook| {
                                Refusal::no(&h.command, "", "")
                                    .containing(&h.containing)
                                    .matches(rest)
                            };
                            let hit = s.rules.before.iter().position(want);
                            let hit = hit.filter(|&i| {
                                s.rules.before[i].times.is_none_or(|n| s.hooked[i] < n)
                            });
                            hit.map(|i| {
                                s.hooked[i] += 1;
                                s.rules.before[i].action.clone()
                            })
                        };
                        if let Some(action) = hook {
                            let rest = rest.to_string();
                            let _ = tokio::task::spawn_blocking(move || action(&rest)).await;
                        }
                        if rest.eq_ignore_ascii_case("IDLE") {
                            idling.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
                if write(&server_w, &line).await.is_none() {
                    break;
                }
                match lit {
                    Some(n) => {
                        if pass_literal(&mut r, &server_w, n).await.is_none() {
                            break;
                        }
                        start = false;
                    }
                    None => start = true,
                }
            }
            let _ = server_w.lock().await.shutdown().await;
        }
    };
    let down = async move {
        let mut r = BufReader::new(server_r);
        let mut start = true;
        let mut busy_until = tokio::time::Instant::now();
        // A MOVE's tagged completion held back (`late_move_completions`).
        let mut held: Option<Vec<u8>> = None;
        loop {
            let next = match held {
                Some(_) => {
                    // Long enough for a client on a loaded machine to
                    // journal (fsync) and send its next MOVE.
                    match tokio::time::timeout(std::time::Duration::from_secs(2), read_line(&mut r))
                        .await
                    {
                        Ok(l) => l,
                        Err(_) => {
                            let h = held.take().unwrap_or_default();
                            if write(&client_w, &h).await.is_none() {
                                break;
                            }
                            continue;
                        }
                    }
                }
                None => read_line(&mut r).await,
            };
            let Some(mut line) = next else { break };
            let lit = literal_len(&line);
            if start {
                let late = shared.lock().unwrap().rules.late_move_completions;
                if late {
                    let text = String::from_utf8_lossy(&line).to_string();
                    let tag = text.split(' ').next().unwrap_or("").to_string();
                    let tagged = !matches!(tag.as_str(), "*" | "+" | "");
                    if tagged && held.is_none() && shared.lock().unwrap().moves.remove(&tag) {
                        held = Some(line);
                        continue;
                    }
                    if tagged {
                        if let Some(h) = held.take() {
                            if write(&client_w, &h).await.is_none() {
                                break;
                            }
                        }
                    } else if held.is_some() && text.to_ascii_uppercase().contains("[COPYUID ") {
                        if write(&client_w, &line).await.is_none() {
                            break;
                        }
                        let h = held.take().unwrap_or_default();
                        shared.lock().unwrap().seen.reordered += 1;
                        if write(&client_w, &h).await.is_none() {
                            break;
                        }
                        start = true;
                        continue;
                    }
                }
                let (hide, silent) = {
                    let s = shared.lock().unwrap();
                    (s.rules.hide_capabilities.clone(), s.rules.silent_idle)
                };
                let text = String::from_utf8_lossy(&line).to_string();
                let words: Vec<&str> = text.split_whitespace().collect();
                let pushed = words.len() >= 3
                    && words[0] == "*"
                    && words[1].parse::<u32>().is_ok()
                    && ["EXISTS", "RECENT"]
                        .iter()
                        .any(|k| words[2].eq_ignore_ascii_case(k));
                if silent && pushed && idling.load(std::sync::atomic::Ordering::SeqCst) {
                    shared.lock().unwrap().seen.dropped += 1;
                    continue;
                }
                if !hide.is_empty() && text.to_ascii_uppercase().contains("CAPABILITY") {
                    line = hide_caps(&text, &hide).into_bytes();
                }
            }
            if write(&client_w, &line).await.is_none() {
                break;
            }
            pace(&shared, &mut busy_until, line.len()).await;
            match lit {
                Some(n) => {
                    if pass_literal_down(&mut r, &client_w, n, &shared, &mut busy_until)
                        .await
                        .is_none()
                    {
                        break;
                    }
                    start = false;
                }
                None => start = true,
            }
        }
        if let Some(h) = held {
            let _ = write(&client_w, &h).await;
        }
        let _ = client_w.lock().await.shutdown().await;
    };
    tokio::join!(up, down);
}

/// A response line with the capabilities in `hide` left out (a hidden
/// last one of a `[CAPABILITY ...]` code leaves its bracket behind).
fn hide_caps(line: &str, hide: &[String]) -> String {
    let body = line.trim_end_matches(['\r', '\n']);
    let mut kept: Vec<String> = Vec::new();
    for w in body.split(' ') {
        let bare = w.trim_end_matches(']');
        if hide.iter().any(|h| h.eq_ignore_ascii_case(bare)) {
            if w.ends_with(']') {
                if let Some(last) = kept.last_mut() {
                    last.push(']');
                }
            }
        } else {
            kept.push(w.to_string());
        }
    }
    format!("{}\r\n", kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_match_words_after_the_tag() {
        let r = Refusal::no("UID STORE", "CANNOT", "no").containing("\\Deleted");
        assert!(r.matches("uid store 1:3 +FLAGS.SILENT (\\Deleted)"));
        assert!(!r.matches("UID STORE 1 +FLAGS.SILENT (\\Seen)"));
        assert!(!r.matches("UID FETCH 1 (FLAGS)"));
        assert_eq!(r.reply("A7"), "A7 NO [CANNOT] no\r\n");
    }

    #[test]
    fn uid_sets_are_read() {
        assert_eq!(uids_of("1,3:5,9"), vec![1, 3, 4, 5, 9]);
        assert_eq!(uids_of("7:6"), vec![6, 7]);
        assert_eq!(uids_of("4:*,x"), Vec::<u32>::new());
    }

    #[test]
    fn literals_are_recognised() {
        assert_eq!(literal_len(b"A1 APPEND INBOX {310}\r\n"), Some(310));
        assert_eq!(literal_len(b"A1 APPEND INBOX {310+}\r\n"), Some(310));
        assert_eq!(literal_len(b"* 1 FETCH (UID 4)\r\n"), None);
    }

    #[test]
    fn capabilities_are_hidden() {
        let hide = vec!["MOVE".to_string()];
        assert_eq!(
            hide_caps("* CAPABILITY IMAP4rev1 MOVE IDLE\r\n", &hide),
            "* CAPABILITY IMAP4rev1 IDLE\r\n"
        );
        assert_eq!(
            hide_caps("* OK [CAPABILITY IMAP4rev1 IDLE MOVE] ready\r\n", &hide),
            "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
        );
    }
}
