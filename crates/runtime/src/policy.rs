//! The egress policy: which addresses a guest may connect or send to.
//!
//! Public addresses are allowed; the host's loopback, private ranges, link-local, CGNAT,
//! multicast and unspecified addresses are denied unless a rule from `--allow-outbound`
//! grants them. The check runs on the address actually used (after name resolution), at every
//! connect and every datagram, so DNS rebinding cannot turn an allowed name into a denied
//! address. IPv4-mapped, IPv4-compatible and NAT64 IPv6 forms are judged as the IPv4 address
//! they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One `--allow-outbound` grant: an address range and optionally one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    pub addr: IpAddr,
    pub prefix: u8,
    pub port: Option<u16>,
}

/// What an `--allow-outbound` value names before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundTarget {
    /// `CIDR[:PORT]`, `IP[:PORT]`, `[IPv6]:PORT`: ready to use.
    Rule(OutboundRule),
    /// `HOST[:PORT]`: the caller resolves `host` and adds one rule per address.
    Host { host: String, port: Option<u16> },
}

impl OutboundTarget {
    /// Parses `HOST[:PORT]`, `IP[:PORT]`, `[IPv6][:PORT]`, `CIDR[:PORT]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid --allow-outbound value {s:?}: {why}");
        if s.is_empty() || s.len() > 255 || s.contains(|c: char| c.is_whitespace() || c == '\0') {
            return Err(bad("expected HOST[:PORT] or CIDR[:PORT]"));
        }
        let parse_port = |p: &str| -> Result<u16, String> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad("the port must be 1-65535")),
            }
        };
        // [v6]:port or [v6/prefix]:port
        let (addr_part, port) = if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(parse_port(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                )?),
            };
            (inside, port)
        } else if s.matches(':').count() == 1 {
            let (a, p) = s.split_once(':').unwrap_or((s, ""));
            (a, Some(parse_port(p)?))
        } else {
            // no colon, or a bare IPv6 address / CIDR
            (s, None)
        };
        let (ip_part, prefix) = match addr_part.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (addr_part, None),
        };
        if let Ok(addr) = ip_part.parse::<IpAddr>() {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(bad("the prefix length is out of range")),
                },
            };
            return Ok(Self::Rule(OutboundRule { addr, prefix, port }));
        }
        if prefix.is_some() {
            return Err(bad("a CIDR needs an IP address"));
        }
        let host = ip_part.to_ascii_lowercase();
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !valid_host {
            return Err(bad("not a host name, IP address or CIDR"));
        }
        Ok(Self::Host { host, port })
    }
}

impl OutboundRule {
    fn matches(&self, ip: IpAddr, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (canonical(self.addr), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let prefix = if self.addr.is_ipv4() {
                    self.prefix
                } else {
                    self.prefix.saturating_sub(96)
                };
                prefix_eq(&net.octets(), &ip.octets(), prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rem = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rem == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rem);
    (a[full] & mask) == (b[full] & mask)
}

/// The egress policy of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow: Vec<OutboundRule>,
}

impl EgressPolicy {
    /// Whether the guest may connect or send to `addr`.
    pub fn allows(&self, addr: SocketAddr) -> bool {
        let ip = canonical(addr.ip());
        if self.allow.iter().any(|r| r.matches(ip, addr.port())) {
            return true;
        }
        addr.port() != 0 && !is_internal(ip)
    }
}

/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::/96`)
/// IPv6 addresses become the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let seg = v6.segments();
            let embedded = || {
                let o = v6.octets();
                Ipv4Addr::new(o[12], o[13], o[14], o[15])
            };
            if seg[..6] == [0, 0, 0, 0, 0, 0] && !(seg[6] == 0 && seg[7] <= 1) {
                return IpAddr::V4(embedded());
            }
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return IpAddr::V4(embedded());
            }
            ip
        }
    }
}

/// Addresses that lead to the host, its LAN or nowhere public: denied unless granted.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0 // 0.0.0.0/8
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 CGNAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 IETF
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
                || o[0] >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            let s0 = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s0 & 0xfe00) == 0xfc00 // fc00::/7 unique local
                || (s0 & 0xffc0) == 0xfe80 // fe80::/10 link-local
                || (s0 & 0xffc0) == 0xfec0 // fec0::/10 site-local
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn rule(s: &str) -> OutboundRule {
        match OutboundTarget::parse(s).unwrap() {
            OutboundTarget::Rule(r) => r,
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    #[test]
    fn default_policy_denies_the_host_and_private_ranges() {
        let p = EgressPolicy::default();
        for denied in [
            "127.0.0.1:22",
            "127.9.9.9:80",
            "10.1.2.3:80",
            "172.16.0.1:80",
            "192.168.1.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "0.0.0.0:80",
            "224.0.0.1:5353",
            "255.255.255.255:67",
            "[::1]:22",
            "[::]:80",
            "[::ffff:127.0.0.1]:22",
            "[::ffff:10.0.0.1]:22",
            "[::127.0.0.1]:22",
            "[64:ff9b::a9fe:a9fe]:80",
            "[fd00::1]:80",
            "[fe80::1]:80",
            "93.184.216.34:0",
        ] {
            assert!(!p.allows(sa(denied)), "{denied} should be denied");
        }
        for allowed in ["93.184.216.34:443", "1.1.1.1:53", "[2606:4700::1111]:443"] {
            assert!(p.allows(sa(allowed)), "{allowed} should be allowed");
        }
    }

    #[test]
    fn rules_grant_exactly_what_they_name() {
        let p = EgressPolicy {
            allow: vec![rule("127.0.0.1:8080"), rule("10.0.0.0/8"), rule("[::1]:53")],
        };
        assert!(p.allows(sa("127.0.0.1:8080")));
        assert!(p.allows(sa("[::ffff:127.0.0.1]:8080")));
        assert!(!p.allows(sa("127.0.0.1:8081")));
        assert!(!p.allows(sa("127.0.0.2:8080")));
        assert!(p.allows(sa("10.200.3.4:22")));
        assert!(p.allows(sa("11.0.0.1:22")), "public addresses stay allowed");
        assert!(p.allows(sa("[::1]:53")));
        assert!(!p.allows(sa("[::1]:54")));
        assert!(!p.allows(sa("192.168.0.1:80")));
    }

    #[test]
    fn prefixes_match_bitwise() {
        let r = rule("192.168.4.0/22");
        assert!(r.matches("192.168.7.255".parse().unwrap(), 1));
        assert!(!r.matches("192.168.8.0".parse().unwrap(), 1));
        let r = rule("[fd00::/8]:443");
        assert!(r.matches("fdff::1".parse().unwrap(), 443));
        assert!(!r.matches("fdff::1".parse().unwrap(), 80));
    }

    #[test]
    fn parse_accepts_docker_like_forms_and_refuses_junk() {
        assert_eq!(
            OutboundTarget::parse("db.internal:5432").unwrap(),
            OutboundTarget::Host {
                host: "db.internal".into(),
                port: Some(5432)
            }
        );
        assert_eq!(
            OutboundTarget::parse("LocalHost").unwrap(),
            OutboundTarget::Host {
                host: "localhost".into(),
                port: None
            }
        );
        assert_eq!(rule("::1").prefix, 128);
        assert_eq!(rule("10.0.0.0/8:443").port, Some(443));
        for bad in [
            "",
            "host:0",
            "host:99999",
            "10.0.0.0/33",
            "exa mple",
            "-bad-.com",
            "[::1",
            "[::1]x",
            "a/8",
            "host:port",
        ] {
            assert!(
                OutboundTarget::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
