//! The network side of server discovery for `account add`: RFC 6186 SRV
//! queries (`_imaps._tcp`, `_imap._tcp`, and RFC 5804 `_sieve._tcp`)
//! through hickory-resolver, then the autoconfig file over HTTPS through
//! ureq (native TLS, the system's trust store). Thin: the answers are
//! chosen and parsed by the pure functions of [`crate::discover`].
//!
//! Every name, including the autoconfig web hosts, is resolved by the
//! same resolver: the system's (`/etc/resolv.conf`, `/etc/hosts`), or one
//! DNS server given with [`Options::nameserver`].

use crate::discover::{self, AutoConfig, Endpoint, SrvRecord, SrvServers};
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How to look.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ask this DNS server (UDP, then TCP) instead of the system's.
    pub nameserver: Option<SocketAddr>,
    /// Per DNS query (two attempts) and per HTTPS request.
    pub timeout: Duration,
    /// The port the autoconfig web servers are reached on: 443, except in
    /// tests (where the URLs still name the standard port).
    pub https_port: u16,
    /// Trust only these PEM certificates for the autoconfig web servers,
    /// instead of the system's trust store (tests).
    pub https_roots: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nameserver: None,
            timeout: Duration::from_secs(5),
            https_port: 443,
            https_roots: None,
        }
    }
}

/// Where the servers were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// DNS SRV records (RFC 6186).
    Srv,
    /// An autoconfig file, at this URL.
    Autoconfig(String),
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub source: Source,
    pub imap: Endpoint,
    /// ManageSieve, from `_sieve._tcp` (also looked up when the IMAP
    /// server came from autoconfig).
    pub sieve: Option<Endpoint>,
    /// The login name the autoconfig file gives.
    pub username: Option<String>,
    /// The provider's name the autoconfig file gives.
    pub provider: Option<String>,
}

/// What was asked, with each outcome in a few words, for `-v`.
pub type Trail = Vec<String>;

/// Looks for an address's IMAP (and ManageSieve) servers: SRV records
/// first, then the autoconfig URLs of [`discover::autoconfig_urls`].
/// Returns None when nothing usable was found; the trail says what was
/// tried. Blocking (runs its own small Tokio runtime; call it outside
/// one).
pub fn discover(address: &str, opts: &Options) -> (Option<Found>, Trail) {
    let mut trail = Trail::new();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            trail.push(format!("cannot start the resolver: {e}"));
            return (None, trail);
        }
    };
    let resolver = match resolver(opts) {
        Ok(r) => r,
        Err(e) => {
            trail.push(e);
            return (None, trail);
        }
    };
    let domain = discover::domain_of(address);
    let srv = rt.block_on(srv_servers(&resolver, &domain, &mut trail));
    if let Some(imap) = srv.imap {
        let found = Found {
            source: Source::Srv,
            imap,
            sieve: srv.sieve,
            username: None,
            provider: None,
        };
        return (Some(found), trail);
    }
    for url in discover::autoconfig_urls(address) {
        match fetch(&rt, &resolver, &url, opts) {
            Ok(xml) => match discover::parse_autoconfig(&xml, address) {
                Ok(AutoConfig {
                    provider,
                    imap,
                    username,
                }) => {
                    trail.push(format!("{url}: IMAP server {}", imap.host));
                    let found = Found {
                        source: Source::Autoconfig(url),
                        imap,
                        sieve: srv.sieve,
                        username,
                        provider,
                    };
                    return (Some(found), trail);
                }
                Err(e) => trail.push(format!("{url}: {e}")),
            },
            Err(e) => trail.push(format!("{url}: {e}")),
        }
    }
    (None, trail)
}

fn resolver(opts: &Options) -> Result<TokioResolver, String> {
    let mut builder = match opts.nameserver {
        Some(ns) => {
            let mut server = NameServerConfig::udp_and_tcp(ns.ip());
            for c in &mut server.connections {
                c.port = ns.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            )
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system's DNS settings: {e}"))?,
    };
    let o = builder.options_mut();
    o.timeout = opts.timeout;
    o.attempts = 2;
    builder
        .build()
        .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
}

/// The SRV answers for the three services, ordered (RFC 2782) and combined.
async fn srv_servers(resolver: &TokioResolver, domain: &str, trail: &mut Trail) -> SrvServers {
    let mut answers: [Vec<SrvRecord>; 3] = Default::default();
    for (service, out) in ["_imaps._tcp", "_imap._tcp", "_sieve._tcp"]
        .into_iter()
        .zip(answers.iter_mut())
    {
        let name = format!("{service}.{domain}.");
        let records: Vec<SrvRecord> = match resolver.srv_lookup(name.as_str()).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some(SrvRecord {
                        priority: s.priority,
                        weight: s.weight,
                        port: s.port,
                        target: s.target.to_ascii(),
                    }),
                    _ => None,
                })
                .collect(),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Vec::new(),
            Err(e) => {
                trail.push(format!("SRV {name}: {e}"));
                continue;
            }
        };
        *out = discover::srv_order(&records, &mut random);
        trail.push(match out.first() {
            Some(r) => format!("SRV {name}: {} port {}", r.target, r.port),
            None => format!("SRV {name}: none"),
        });
    }
    discover::srv_servers(&answers[0], &answers[1], &answers[2])
}

/// A number in `0..=n` for the weighted choice among SRV records: the
/// standard library's randomly keyed hasher, enough for load spreading.
fn random(n: u32) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(n);
    (h.finish() % (u64::from(n) + 1)) as u32
}

/// ureq's host lookups, through the same resolver as the SRV queries.
struct Lookup {
    rt: Arc<tokio::runtime::Runtime>,
    resolver: TokioResolver,
    port: u16,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}

impl ureq::unversioned::resolver::Resolver for Lookup {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let host = host.trim_matches(['[', ']']);
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .rt
                .block_on(self.resolver.lookup_ip(format!("{host}.")))
                .map_err(|_| ureq::Error::HostNotFound)?
                .iter()
                .collect(),
        };
        let mut out = self.empty();
        for ip in ips.into_iter().take(16) {
            out.push(SocketAddr::new(ip, self.port));
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// GET one autoconfig URL: HTTPS only, no redirect to plain HTTP, at most
/// 1 MiB, within the timeout.
fn fetch(
    rt: &Arc<tokio::runtime::Runtime>,
    resolver: &TokioResolver,
    url: &str,
    opts: &Options,
) -> Result<String, String> {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let roots = match &opts.https_roots {
        None => RootCerts::PlatformVerifier,
        Some(pem) => {
            let certs: Vec<_> = ureq::tls::parse_pem(pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            RootCerts::Specific(Arc::new(certs))
        }
    };
    let config = ureq::Agent::config_builder()
        .https_only(true)
        .timeout_global(Some(opts.timeout))
        .max_redirects(5)
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                .root_certs(roots)
                .build(),
        )
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        Lookup {
            rt: rt.clone(),
            resolver: resolver.clone(),
            port: opts.https_port,
        },
    );
    let mut response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => format!("HTTP status {code}"),
        ureq::Error::HostNotFound => "no such host".to_string(),
        e => e.to_string(),
    })?;
    response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| format!("cannot read the file: {e}"))
}
