//! What a connector may reach: the overlap of what its manifest asks for and what
//! the integrator granted, and the address policy applied after DNS.
//!
//! A manifest asks with patterns: `scheme://host[:port]`, `scheme://*.domain[:port]`
//! (any subdomain), or `*` (a self-hosted system whose address only the
//! integrator knows). The integrator grants concrete origins. A granted origin
//! is reachable when some requested pattern matches it. After resolution,
//! loopback and private addresses are refused unless the grant allows them;
//! link-local (cloud metadata), unspecified, multicast and broadcast
//! addresses are always refused.

use crate::{NetworkGrants, Origin};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One outbound host pattern from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: whatever the integrator grants.
    Any,
    /// `scheme://host:port`, or `scheme://*.suffix:port` when `wildcard`.
    Host {
        /// `http` or `https`.
        scheme: String,
        /// The host, or the domain under which any subdomain matches.
        host: String,
        /// The port.
        port: u16,
        /// Whether `host` is a `*.` suffix.
        wildcard: bool,
    },
}

impl HostPattern {
    /// Parse a manifest pattern.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        if s.trim() == "*" {
            return Ok(HostPattern::Any);
        }
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?} is not scheme://host[:port]"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("{s:?}: only http and https are supported"));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        // The pattern minus its `*.` is an origin: the one normaliser reads it.
        let origin = Origin::parse(&format!("{scheme}://{rest}"))?;
        Ok(HostPattern::Host {
            scheme: origin.scheme,
            host: origin.host,
            port: origin.port,
            wildcard,
        })
    }

    /// Whether a granted origin falls under this pattern.
    pub fn matches(&self, origin: &Origin) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Host {
                scheme,
                host,
                port,
                wildcard,
            } => {
                *scheme == origin.scheme
                    && *port == origin.port
                    && if *wildcard {
                        origin
                            .host
                            .strip_suffix(host.as_str())
                            .is_some_and(|p| p.ends_with('.') && p.len() > 1)
                    } else {
                        *host == origin.host
                    }
            }
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Host {
                scheme,
                host,
                port,
                wildcard,
            } => write!(
                f,
                "{scheme}://{}{host}:{port}",
                if *wildcard { "*." } else { "" }
            ),
        }
    }
}

/// The outbound access a loaded connector actually has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveGrants {
    /// Reachable origins.
    pub origins: Vec<Origin>,
    /// Whether they may resolve to loopback.
    pub allow_loopback: bool,
    /// Whether they may resolve to private ranges.
    pub allow_private: bool,
}

/// Intersect a manifest's requests with the integrator's grants. Returns the
/// effective grants and one warning per mismatch.
pub fn intersect(
    requested: &[HostPattern],
    granted: &NetworkGrants,
) -> (EffectiveGrants, Vec<String>) {
    let mut warnings = Vec::new();
    let mut origins = Vec::new();
    for origin in &granted.hosts {
        if requested.iter().any(|p| p.matches(origin)) {
            origins.push(origin.clone());
        } else {
            warnings.push(format!(
                "{origin} is granted but the connector does not ask for it; it stays unreachable"
            ));
        }
    }
    for pattern in requested {
        if matches!(pattern, HostPattern::Any) {
            if granted.hosts.is_empty() {
                warnings.push(
                    "the connector asks for hosts chosen by the integrator (`*`), and none is granted"
                        .into(),
                );
            }
        } else if !granted.hosts.iter().any(|o| pattern.matches(o)) {
            warnings.push(format!(
                "the connector asks for {pattern}, which is not granted"
            ));
        }
    }
    (
        EffectiveGrants {
            origins,
            allow_loopback: granted.allow_loopback,
            allow_private: granted.allow_private,
        },
        warnings,
    )
}

impl EffectiveGrants {
    /// Whether a request to this origin may go out.
    pub fn allows_origin(&self, origin: &Origin) -> bool {
        self.origins.contains(origin)
    }

    /// Whether a resolved address may be connected to.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::Private => self.allow_private,
            AddressClass::Forbidden => false,
        }
    }
}

/// How the address policy sees an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Routable on the internet.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, 100.64.0.0/10, fc00::/7.
    Private,
    /// Link-local (169.254.0.0/16 incl. cloud metadata, fe80::/10),
    /// unspecified, multicast, broadcast, 0.0.0.0/8.
    Forbidden,
}

/// Classify an address; IPv4-mapped and NAT64 IPv6 addresses are judged by
/// the IPv4 address inside.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return classify_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || o[0] == 0
        || o[0] >= 240
    {
        AddressClass::Forbidden
    } else if ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s0 = ip.segments()[0];
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() || (s0 & 0xffc0) == 0xfe80 {
        AddressClass::Forbidden
    } else if (s0 & 0xfe00) == 0xfc00 {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_exact_wildcard_and_any() {
        let exact = HostPattern::parse("https://api.mypurecloud.com").unwrap();
        assert!(exact.matches(&origin("https://api.mypurecloud.com:443")));
        assert!(!exact.matches(&origin("http://api.mypurecloud.com")));
        assert!(!exact.matches(&origin("https://api.mypurecloud.com:8443")));
        let wild = HostPattern::parse("https://*.mypurecloud.de").unwrap();
        assert!(wild.matches(&origin("https://api.mypurecloud.de")));
        assert!(!wild.matches(&origin("https://mypurecloud.de")));
        assert!(!wild.matches(&origin("https://evilmypurecloud.de")));
        assert!(HostPattern::Any.matches(&origin("http://10.0.0.1:8080")));
        assert!(HostPattern::parse("ftp://x").is_err());
        assert_eq!(wild.to_string(), "https://*.mypurecloud.de:443");
    }

    #[test]
    fn intersection_keeps_the_overlap_and_reports_the_rest() {
        let requested = vec![
            HostPattern::parse("https://api.mypurecloud.com").unwrap(),
            HostPattern::parse("https://api.mypurecloud.ie").unwrap(),
        ];
        let granted = NetworkGrants {
            hosts: vec![
                origin("https://api.mypurecloud.ie"),
                origin("https://evil.example"),
            ],
            ..Default::default()
        };
        let (eff, warnings) = intersect(&requested, &granted);
        assert_eq!(eff.origins, vec![origin("https://api.mypurecloud.ie")]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("evil.example") && w.contains("does not ask"))
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("api.mypurecloud.com:443") && w.contains("not granted"))
        );
    }

    #[test]
    fn address_policy() {
        let strict = EffectiveGrants::default();
        for ip in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "100.64.0.1",
            "fd00::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                !strict.allows_ip(ip.parse().unwrap()),
                "{ip} must be refused"
            );
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            assert!(strict.allows_ip(ip.parse().unwrap()), "{ip} is public");
        }
        let lenient = EffectiveGrants {
            allow_loopback: true,
            allow_private: true,
            ..Default::default()
        };
        assert!(lenient.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(lenient.allows_ip("10.0.0.1".parse().unwrap()));
        assert!(
            !lenient.allows_ip("169.254.169.254".parse().unwrap()),
            "metadata stays refused"
        );
    }
}
