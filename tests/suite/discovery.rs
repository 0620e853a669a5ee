//! Server discovery for `account add`, end to end on loopback: a small DNS
//! server in the test (answers built with hickory-proto) for the RFC 6186
//! SRV records and the autoconfig hosts' addresses, and an HTTPS server
//! with its own certificate serving the autoconfig files (samples from
//! Thunderbird's ISPDB, tests/fixtures/autoconfig). No outside network.

use backscatter::config::TlsMode;
use backscatter::discover_net::{discover, Options, Source};
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A DNS server on 127.0.0.1 (UDP) answering from a fixed zone: the
/// records of a name, NOERROR with no answer when the name has records of
/// other types only, NXDOMAIN otherwise. Stops when dropped.
struct DnsStub {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsStub {
    fn start(zone: Vec<(&str, RData)>) -> DnsStub {
        let zone: Vec<(Name, RData)> = zone
            .into_iter()
            .map(|(n, d)| (Name::from_ascii(n).unwrap(), d))
            .collect();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
                reply.metadata.recursion_desired = query.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                for q in &query.queries {
                    reply.add_query(q.clone());
                    let same_name: Vec<&(Name, RData)> =
                        zone.iter().filter(|(n, _)| n == &q.name).collect();
                    if same_name.is_empty() {
                        reply.metadata.response_code = ResponseCode::NXDomain;
                    }
                    for (n, d) in same_name {
                        if d.record_type() == q.query_type {
                            reply.add_answer(Record::from_rdata(n.clone(), 60, d.clone()));
                        }
                    }
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer);
            }
        });
        DnsStub {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(
        priority,
        weight,
        port,
        Name::from_ascii(target).unwrap(),
    ))
}

fn a_loopback() -> RData {
    RData::A(A::new(127, 0, 0, 1))
}

/// A certificate for `names` (self-signed, trusted as its own root), made
/// with the openssl command as the Dovecot harness makes its own.
fn certificate(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("web.pem"), dir.join("web.key"));
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={}", names[0]),
            "-addext",
            &format!("subjectAltName={}", san.join(",")),
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (installed by scripts/test)");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (cert, key)
}

/// An HTTPS server on 127.0.0.1: each request's target (path and query)
/// is looked up in `files`; 404 when absent. Keeps the request lines it
/// saw. Stops when dropped.
struct WebServer {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl WebServer {
    fn start(cert: &Path, key: &Path, files: HashMap<String, String>) -> WebServer {
        let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(
            &std::fs::read(cert).unwrap(),
            &std::fs::read(key).unwrap(),
        )
        .unwrap();
        let acceptor = tokio_native_tls::native_tls::TlsAcceptor::new(identity).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                // A failed handshake (an untrusted name) is the client's
                // business: go on with the next connection.
                let Ok(mut tls) = acceptor.accept(stream) else {
                    continue;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or("").to_string();
                let target = line.split(' ').nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(line);
                let (status, body) = match files.get(&target) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", "not here".to_string()),
                };
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
            }
        });
        WebServer { port, seen, stop }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        crate::util::root()
            .join("tests/fixtures/autoconfig")
            .join(name),
    )
    .unwrap()
}

#[test]
fn srv_records_then_autoconfig_on_loopback() {
    let dir = crate::sweep::tempdir("discovery");
    let dns = DnsStub::start(vec![
        // SRV: a backup at a worse priority, STARTTLS and implicit TLS at
        // the same one (implicit TLS wins), and ManageSieve.
        ("_imaps._tcp.srv.test.", srv(10, 0, 993, "imap.srv.test.")),
        ("_imaps._tcp.srv.test.", srv(20, 0, 993, "backup.srv.test.")),
        ("_imap._tcp.srv.test.", srv(10, 0, 143, "imap.srv.test.")),
        ("_sieve._tcp.srv.test.", srv(0, 0, 4190, "sieve.srv.test.")),
        // "." : IMAP decidedly not offered by SRV here; autoconfig then.
        ("_imaps._tcp.example.test.", srv(0, 0, 0, ".")),
        ("autoconfig.example.test.", a_loopback()),
        // Only the well-known URL at the domain itself.
        ("wk.test.", a_loopback()),
        // A web server whose certificate does not name it.
        ("autoconfig.wrongcert.test.", a_loopback()),
    ]);
    let (cert, key) = certificate(&dir, &["autoconfig.example.test", "wk.test"]);
    let mut files = HashMap::new();
    files.insert(
        "/mail/config-v1.1.xml?emailaddress=ana%40example.test".to_string(),
        fixture("uol.com.br.xml"),
    );
    files.insert(
        "/.well-known/autoconfig/mail/config-v1.1.xml".to_string(),
        fixture("gmx.net.xml"),
    );
    let web = WebServer::start(&cert, &key, files);
    let opts = Options {
        nameserver: Some(dns.addr),
        timeout: Duration::from_secs(20),
        https_port: web.port,
        https_roots: Some(std::fs::read(&cert).unwrap()),
    };

    let (found, trail) = discover("me@srv.test", &opts);
    let f = found.unwrap_or_else(|| panic!("{trail:?}"));
    assert_eq!(f.source, Source::Srv);
    assert_eq!(
        (f.imap.host.as_str(), f.imap.port, f.imap.tls),
        ("imap.srv.test", 993, TlsMode::Implicit)
    );
    let sieve = f.sieve.unwrap();
    assert_eq!((sieve.host.as_str(), sieve.port), ("sieve.srv.test", 4190));

    let (found, trail) = discover("ana@example.test", &opts);
    let f = found.unwrap_or_else(|| panic!("{trail:?}"));
    assert_eq!(
        f.source,
        Source::Autoconfig(
            "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ana%40example.test"
                .into()
        )
    );
    assert_eq!(f.imap.host, "imap.uol.com.br");
    assert_eq!(f.username.as_deref(), Some("ana"));
    assert_eq!(f.sieve, None);

    let (found, trail) = discover("jo@wk.test", &opts);
    let f = found.unwrap_or_else(|| panic!("{trail:?}"));
    assert_eq!(
        f.source,
        Source::Autoconfig("https://wk.test/.well-known/autoconfig/mail/config-v1.1.xml".into())
    );
    assert_eq!(
        (f.imap.host.as_str(), f.imap.tls),
        ("imap.gmx.net", TlsMode::Implicit)
    );
    assert!(trail
        .iter()
        .any(|l| l.contains("autoconfig.wk.test") && l.contains("no such host")));

    // TLS is verified: a certificate for other names is refused.
    let (found, trail) = discover("x@wrongcert.test", &opts);
    assert_eq!(found, None, "{trail:?}");
    assert!(trail
        .iter()
        .any(|l| l.contains("autoconfig.wrongcert.test")));

    // Nothing anywhere: None, and the trail names all five places.
    let (found, trail) = discover("x@nothing.test", &opts);
    assert_eq!(found, None);
    assert_eq!(trail.len(), 5, "{trail:?}");
    let seen = web.seen.lock().unwrap().clone();
    assert!(seen
        .iter()
        .any(|l| l.starts_with("GET /mail/config-v1.1.xml?emailaddress=ana%40example.test ")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A DNS stub whose SRV records for `srv.test` point IMAPS and
/// ManageSieve at the test Dovecot on localhost.
fn srv_test_dns(dc: &crate::harness::Dovecot) -> DnsStub {
    DnsStub::start(vec![
        (
            "_imaps._tcp.srv.test.",
            srv(0, 0, dc.imaps_port, "localhost."),
        ),
        (
            "_sieve._tcp.srv.test.",
            srv(0, 0, dc.sieve_port, "localhost."),
        ),
    ])
}

#[test]
fn account_add_uses_srv_records_and_says_so() {
    let Some(dc) = crate::harness::Dovecot::start_or_skip("account_add_srv") else {
        return;
    };
    let dir = crate::sweep::tempdir("account-add-srv");
    let cfg = dir.join("config.toml");
    let dns = srv_test_dns(&dc);
    let ns = dns.addr.to_string();
    let ca = dc.ca_file.display().to_string();
    let add = |address: &str| {
        crate::util::backscatter(
            &dir,
            &cfg,
            &[
                "account",
                "add",
                "home",
                "--address",
                address,
                "--username",
                "alice",
                "--password-env",
                "PW",
                "--tls-ca-file",
                &ca,
                "--nameserver",
                &ns,
            ],
        )
        .env("PW", "alicepw")
        .stdin(Stdio::null())
        .output()
        .unwrap()
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // Nothing found: one sentence, a usage error, nothing written.
    let o = add("alice@nothing.test");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr).trim(),
        "backscatter: found no IMAP server for nothing.test (not a provider backscatter knows, no SRV records, no autoconfig file): give --host"
    );
    assert!(!cfg.exists());

    let o = add("alice@srv.test");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{}{err}", text(&o.stdout));
    assert!(
        err.contains(&format!(
            "Found localhost:{} (TLS) from DNS SRV records (RFC 6186).",
            dc.imaps_port
        )),
        "{err}"
    );
    let written = std::fs::read_to_string(&cfg).unwrap();
    assert!(written.contains("from DNS SRV records"), "{written}");
    let c = backscatter::config::parse(&written, &cfg).unwrap();
    let a = c.account(Some("home")).unwrap();
    assert_eq!(
        (a.imap.host.as_str(), a.imap.port),
        ("localhost", dc.imaps_port)
    );
    assert_eq!(a.sieve.port, dc.sieve_port);
    let out = text(&o.stdout);
    assert!(
        // A fresh account has an empty Sent: said, and the rest is there.
        out.contains("the sent index is empty")
            && out.contains("Everything else backscatter needs is there."),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `account add` on a terminal (a pseudo-terminal driven by rexpect): it
/// asks for the address, the account's name, the login name and where the
/// password comes from (keyring or a command), finds the
/// servers by SRV records, logs in to the test Dovecot, writes the config
/// and runs `account check`.
#[test]
fn account_add_asks_on_a_terminal() {
    let Some(dc) = crate::harness::Dovecot::start_or_skip("account_add_tty") else {
        return;
    };
    let dir = crate::sweep::tempdir("account-add-tty");
    let cfg = dir.join("config.toml");
    let dns = srv_test_dns(&dc);
    let ns = dns.addr.to_string();
    let ca = dc.ca_file.display().to_string();
    let mut cmd = crate::util::backscatter(
        &dir,
        &cfg,
        &["account", "add", "--nameserver", &ns, "--tls-ca-file", &ca],
    );
    cmd.env("PW", "alicepw").env("TERM", "dumb");
    // Generous: a loaded 2-core machine, and account check logs in twice.
    let mut p = rexpect::session::spawn_command(cmd, Some(60_000)).unwrap();
    p.exp_string("Your e-mail address: ").unwrap();
    p.send_line("alice@srv.test").unwrap();
    p.exp_string("A name for this account [srv]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string(&format!(
        "Found localhost:{} (TLS) from DNS SRV records (RFC 6186).",
        dc.imaps_port
    ))
    .unwrap();
    p.exp_string("Login name [alice@srv.test]: ").unwrap();
    p.send_line("alice").unwrap();
    // Where the password comes from: a command here (the keyring needs a
    // desktop session the test machine does not have).
    p.exp_string("keyring/command [keyring]: ").unwrap();
    p.send_line("command").unwrap();
    p.exp_string("Password command: ").unwrap();
    p.send_line("printenv PW").unwrap();
    p.exp_string(&format!(
        "Logged in to localhost:{} as alice.",
        dc.imaps_port
    ))
    .unwrap();
    p.exp_string("Added account \"srv\"").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        // A fresh account has an empty Sent: said, and the rest is there.
        rest.contains("the sent index is empty")
            && rest.contains("Everything else backscatter needs is there."),
        "{rest}"
    );
    let written = std::fs::read_to_string(&cfg).unwrap();
    let c = backscatter::config::parse(&written, &cfg).unwrap();
    let a = c.account(Some("srv")).unwrap();
    assert_eq!(
        (a.imap.host.as_str(), a.imap.port, a.username.as_str()),
        ("localhost", dc.imaps_port, "alice")
    );
    assert_eq!(a.sieve.port, dc.sieve_port);
    assert!(
        written.contains("printenv") && written.contains("PW"),
        "the password command is written: {written}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
