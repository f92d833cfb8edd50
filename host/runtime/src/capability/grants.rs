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
    /// RFC 1918, 100.64.0.0/10 (carrier-grade NAT), fc00::/7 (unique
    /// local), and the special-purpose ranges that are not globally
    /// reachable (IANA's registries: documentation, benchmarking, protocol
    /// assignments, deprecated site-local, discard-only): reachable only with
    /// `allow_private`.
    Private,
    /// Link-local (169.254.0.0/16 incl. cloud metadata, fe80::/10),
    /// unspecified, multicast, broadcast, 0.0.0.0/8, 240.0.0.0/4: never.
    Forbidden,
}

impl AddressClass {
    /// The stricter of two classes (for an address that embeds two IPv4
    /// addresses, as Teredo does).
    fn stricter(self, other: AddressClass) -> AddressClass {
        let rank = |c: AddressClass| match c {
            AddressClass::Public => 0,
            AddressClass::Private => 1,
            AddressClass::Loopback => 2,
            AddressClass::Forbidden => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Classify an address. An IPv6 address that embeds an IPv4 address is
/// judged by the IPv4 address inside, whatever the spelling: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated),
/// IPv4-translated (`::ffff:0:a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`),
/// Teredo (`2001:0::/32`, server and client, the stricter of the two), and
/// NAT64 (`64:ff9b::/96` well-known, `64:ff9b:1::/48` local use).
///
/// ```
/// use oubli_runtime::capability::grants::{classify, AddressClass};
/// for loopback in ["::7f00:1", "::ffff:0:7f00:1", "2002:7f00:1::1", "64:ff9b::127.0.0.1"] {
///     assert_eq!(classify(loopback.parse().unwrap()), AddressClass::Loopback, "{loopback}");
/// }
/// ```
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Embedded::One(v4) => classify_v4(v4),
            Embedded::Two(a, b) => classify_v4(a).stricter(classify_v4(b)),
            Embedded::None => classify_v6(v6),
        },
    }
}

enum Embedded {
    None,
    One(Ipv4Addr),
    Two(Ipv4Addr, Ipv4Addr),
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// The IPv4 address(es) an IPv6 address carries, by its prefix.
fn embedded_v4(ip: Ipv6Addr) -> Embedded {
    let s = ip.segments();
    let last = v4_of(s[6], s[7]);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Embedded::One(last),
        // ::ffff:0:a.b.c.d (translated, RFC 2765)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Embedded::One(last),
        // ::a.b.c.d (compatible, deprecated); :: and ::1 are themselves
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Embedded::One(last),
        // 64:ff9b::/96 (NAT64 well-known prefix, RFC 6052)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Embedded::One(last),
        // 64:ff9b:1::/48 (NAT64 local use, RFC 8215): the IPv4 address sits
        // where the operator's prefix length puts it; judge the last 32 bits,
        // and the range itself is not global
        [0x64, 0xff9b, 1, ..] => Embedded::Two(last, Ipv4Addr::new(10, 0, 0, 0)),
        // 2002:AABB:CCDD::/48 (6to4, RFC 3056)
        [0x2002, hi, lo, ..] => Embedded::One(v4_of(hi, lo)),
        // 2001:0::/32 (Teredo, RFC 4380): server, and client obfuscated
        [0x2001, 0, hi, lo, ..] => Embedded::Two(v4_of(hi, lo), Ipv4Addr::from(!u32::from(last))),
        _ => Embedded::None,
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    let in_net = |net: [u8; 4], bits: u32| {
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
    };
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
    } else if ip.is_private()
        || in_net([100, 64, 0, 0], 10) // carrier-grade NAT
        || in_net([192, 0, 0, 0], 24) // IETF protocol assignments
        || in_net([192, 0, 2, 0], 24) // documentation (TEST-NET-1)
        || in_net([198, 51, 100, 0], 24) // documentation (TEST-NET-2)
        || in_net([203, 0, 113, 0], 24) // documentation (TEST-NET-3)
        || in_net([198, 18, 0, 0], 15) // benchmarking
        || in_net([192, 88, 99, 0], 24)
    // deprecated 6to4 relay anycast
    {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    let in_net = |net: [u16; 2], bits: u32| {
        let top = (u32::from(s[0]) << 16) | u32::from(s[1]);
        let want = (u32::from(net[0]) << 16) | u32::from(net[1]);
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        top & mask == want & mask
    };
    if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() || (s[0] & 0xffc0) == 0xfe80 {
        AddressClass::Forbidden
    } else if (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfec0 // site-local, deprecated
        || s[..4] == [0x100, 0, 0, 0] // discard-only
        || in_net([0x2001, 0], 23) // IETF protocol assignments
        || in_net([0x2001, 0xdb8], 32) // documentation
        || in_net([0x3fff, 0], 20) // documentation
        || in_net([0x5f00, 0], 16)
    // segment routing
    {
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
            // Every IPv6 spelling of loopback and of the metadata address.
            "::7f00:1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "64:ff9b:1::7f00:1",
            "2001:0:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Special-purpose, not global.
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "fec0::1",
            "2002:0a00:0001::1",
        ] {
            assert!(
                !strict.allows_ip(ip.parse().unwrap()),
                "{ip} must be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "2002:5db8:d822::1",
            "64:ff9b::5db8:d822",
        ] {
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
