//! Each container's own network view over wasi:sockets.
//!
//! Containers are not in network namespaces: their sockets are host sockets, opened by
//! wasmtime-wasi on the guest's behalf. The view is made by a wrapper over wasmtime-wasi's
//! own `wasi:sockets` host implementation (see [`sockets`]), shadowing `wasi:sockets/tcp`,
//! `wasi:sockets/udp` and `wasi:sockets/ip-name-lookup` in the component linker:
//!
//! - **Private port space.** A guest bind to a container port that is published
//!   (`-p HOST:CONTAINER`) binds the real `host_ip:host_port`; every other bind goes to an
//!   ephemeral loopback port (`127.0.0.1:0` / `[::1]:0`) that nobody outside is told about.
//!   `local-address` reports what the guest asked for, so two containers can both listen on
//!   port 80 and both believe they do.
//! - **Container names.** Every container gets one virtual IPv4 address per network it joins
//!   (`10.89.N.M`, `N` per network, `bridge` is `N = 0`). On user-defined networks (not
//!   `bridge`, as in Docker) the other members' names resolve to those addresses, and a
//!   connect to `(VIP, port)` goes to that container's real listener for the port. A
//!   connect to a VIP of a container that shares no network, or to a port it does not listen
//!   on, is refused.
//! - **localhost is the container.** A connect to `127.0.0.0/8` or `::1` reaches the
//!   container's own listeners; anything else on the host loopback only when the egress
//!   policy grants it.
//! - **Egress policy.** Every other connect and every datagram is checked with
//!   [`EgressPolicy::allows`](crate::policy::EgressPolicy::allows) on the address actually
//!   used, after name resolution. wasmtime-wasi's `socket_addr_check` repeats the check on the
//!   real addresses as a second layer.
//! - **`--network none`** (`RunSpec::network == None`): TCP, UDP and name lookup are not
//!   allowed at all (the guest gets access-denied / resolver failures); the interfaces stay
//!   linked so components importing wasi:sockets still instantiate.
//!
//! **Preview1 modules get no sockets**: wasmtime-wasi 48's preview1 implementation has no
//! socket support (`sock_*` return `ENOTSOCK`, and there is no way to hand a guest a socket
//! descriptor), so a preview1 guest always runs as if with `--network none`. Network services
//! must be preview2 components.
//!
//! The daemon-wide [`NetRegistry`] tracks attached containers, their virtual addresses and
//! their listeners. Every registration is owned by a guard ([`Attachment`], [`ListenerGuard`])
//! that unregisters on drop, so a run future dropped at any await point leaves nothing behind.

pub(crate) mod sockets;

use crate::policy::EgressPolicy;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

/// `-p HOSTIP:HOSTPORT:CONTAINERPORT/PROTO`, with the host port already chosen (never 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub proto: Proto,
    pub host_ip: IpAddr,
    pub host_port: u16,
}

/// The network view of one running container.
#[derive(Debug, Clone)]
pub struct ContainerNet {
    /// Container id (unique key in the registry).
    pub id: String,
    /// Container name, resolvable by the other containers of its user-defined networks.
    pub name: String,
    /// Networks joined: `bridge` (the default network) or user-defined network names.
    pub networks: Vec<String>,
    pub egress: EgressPolicy,
    pub published: Vec<PublishedPort>,
}

impl ContainerNet {
    /// The published port for a container port, if any.
    pub fn published_port(&self, proto: Proto, container_port: u16) -> Option<&PublishedPort> {
        self.published
            .iter()
            .find(|p| p.proto == proto && p.container_port == container_port)
    }
}

/// The default network, where (as in Docker) container names do not resolve.
pub const DEFAULT_NETWORK: &str = "bridge";

/// First two octets of every virtual address: `10.89.N.M`.
const VIP_PREFIX: [u8; 2] = [10, 89];

/// Daemon-wide table of container addresses and listeners. One per [`crate::Runtime`].
#[derive(Debug, Default)]
pub struct NetRegistry {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Attached containers by id.
    members: HashMap<String, Member>,
    /// Address blocks of the networks in use: `10.89.index.0/24`.
    networks: HashMap<String, NetBlock>,
    /// Listeners by container id.
    listeners: HashMap<String, Vec<Listener>>,
    /// Real local address of a container's outbound socket to another container (or itself)
    /// -> (the client's virtual local address, the virtual address it connected to). Lets the
    /// server side report virtual peers.
    outbound: HashMap<SocketAddr, (SocketAddr, SocketAddr)>,
    next_token: u64,
}

#[derive(Debug)]
struct Member {
    name: String,
    /// One virtual address per joined network, in the order of `networks`.
    vips: Vec<(String, Ipv4Addr)>,
    /// Number of live [`Attachment`]s (the same container may be attached twice, e.g. by a
    /// run and an HTTP server).
    refs: usize,
}

#[derive(Debug)]
struct NetBlock {
    index: u8,
    used: BTreeSet<u8>,
}

#[derive(Debug, Clone)]
struct Listener {
    token: u64,
    proto: Proto,
    guest_port: u16,
    real: SocketAddr,
    /// Bound by the guest to its own loopback: reachable only from the container itself.
    local_only: bool,
}

/// Where a guest's connect or datagram should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// A container listener (possibly the container's own) at this real address.
    /// `virt_local` is the address the client should appear to have on that network.
    Container {
        real: SocketAddr,
        virt_local: IpAddr,
    },
    /// A real destination the egress policy allows.
    Egress(SocketAddr),
    /// A container address with nothing (reachable) listening: connection refused.
    Refused,
    /// Denied by the egress policy.
    Denied,
}

/// What a name lookup by a container answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameAnswer {
    /// A container (or `localhost`) answered with this address.
    Addr(IpAddr),
    /// A container name this container may not see.
    NotFound,
    /// Not a container name: ask the host resolver.
    External,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn normalise_host(host: &str) -> String {
    let h = host.trim_end_matches('.');
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    h.to_ascii_lowercase()
}

fn is_loopback(ip: IpAddr) -> bool {
    crate::policy::canonical(ip).is_loopback()
}

fn same_family(a: SocketAddr, b_is_v4: bool) -> bool {
    a.is_ipv4() == b_is_v4
}

impl Inner {
    fn is_vip(ip: IpAddr) -> bool {
        matches!(crate::policy::canonical(ip), IpAddr::V4(v4) if v4.octets()[..2] == VIP_PREFIX)
    }

    /// The member a VIP belongs to, with the network of that VIP.
    fn member_by_vip(&self, ip: IpAddr) -> Option<(&str, &str)> {
        let IpAddr::V4(v4) = crate::policy::canonical(ip) else {
            return None;
        };
        self.members.iter().find_map(|(id, m)| {
            m.vips
                .iter()
                .find(|(_, vip)| *vip == v4)
                .map(|(net, _)| (id.as_str(), net.as_str()))
        })
    }

    /// A member visible by name from `from` on a shared user-defined network: (id, VIP).
    fn member_by_name(&self, from: &ContainerNet, name: &str) -> Option<(&str, Ipv4Addr)> {
        for (id, m) in &self.members {
            let matches = m.name.eq_ignore_ascii_case(name)
                || id.eq_ignore_ascii_case(name)
                || (name.len() >= 12 && id.len() > 12 && id.starts_with(name));
            if !matches {
                continue;
            }
            for (net, vip) in &m.vips {
                if net != DEFAULT_NETWORK && from.networks.iter().any(|n| n == net) {
                    return Some((id.as_str(), *vip));
                }
            }
        }
        None
    }

    fn is_member_name(&self, name: &str) -> bool {
        self.members
            .values()
            .any(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// `from`'s virtual address on `network` (or its first one).
    fn vip_of(&self, id: &str, network: Option<&str>) -> Option<Ipv4Addr> {
        let m = self.members.get(id)?;
        network
            .and_then(|n| m.vips.iter().find(|(net, _)| net == n))
            .or_else(|| m.vips.first())
            .map(|(_, vip)| *vip)
    }

    /// A listener of `id` for `(proto, port)`, of the wanted family if given (v4 preferred
    /// otherwise). `include_local` admits listeners bound to the container's own loopback.
    fn listener(
        &self,
        id: &str,
        proto: Proto,
        port: u16,
        v4: Option<bool>,
        include_local: bool,
    ) -> Option<SocketAddr> {
        let ls = self.listeners.get(id)?;
        let candidates = ls.iter().filter(|l| {
            l.proto == proto && l.guest_port == port && (include_local || !l.local_only)
        });
        match v4 {
            Some(v4) => candidates
                .filter(|l| same_family(l.real, v4))
                .map(|l| l.real)
                .next(),
            None => {
                let all: Vec<_> = candidates.map(|l| l.real).collect();
                all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
            }
        }
    }

    /// Where `from` reaches `target` (a virtual or real address it asked for).
    fn route(
        &self,
        from: &ContainerNet,
        proto: Proto,
        target: SocketAddr,
        v4: Option<bool>,
    ) -> Route {
        let ip = crate::policy::canonical(target.ip());
        if is_loopback(ip) {
            if let Some(real) = self.listener(&from.id, proto, target.port(), v4, true) {
                return Route::Container {
                    real,
                    virt_local: ip,
                };
            }
        } else if Self::is_vip(ip) {
            if let Some((id, net)) = self.member_by_vip(ip) {
                let reachable = id == from.id || from.networks.iter().any(|n| n == net);
                if !reachable {
                    return Route::Refused;
                }
                let own_vip = self.vip_of(&from.id, Some(net));
                return match self.listener(id, proto, target.port(), v4, id == from.id) {
                    Some(real) => Route::Container {
                        real,
                        virt_local: own_vip.map(IpAddr::V4).unwrap_or(ip),
                    },
                    None => Route::Refused,
                };
            }
            // An unallocated address of the container range: nothing there.
            if !from.egress.allows(target) {
                return Route::Refused;
            }
        }
        if from.egress.allows(target) {
            Route::Egress(target)
        } else {
            Route::Denied
        }
    }

    fn lookup(&self, from: &ContainerNet, name: &str) -> NameAnswer {
        let name = normalise_host(name);
        if name == "localhost" || name == "localhost.localdomain" {
            return NameAnswer::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        if let Some((_, vip)) = self.member_by_name(from, &name) {
            return NameAnswer::Addr(IpAddr::V4(vip));
        }
        if self.is_member_name(&name) || self.members.contains_key(&name) {
            return NameAnswer::NotFound;
        }
        NameAnswer::External
    }

    /// The virtual address of a real listener address (for UDP sources).
    fn virtual_of_real(&self, proto: Proto, real: SocketAddr) -> Option<SocketAddr> {
        self.listeners.iter().find_map(|(id, ls)| {
            let l = ls.iter().find(|l| l.proto == proto && l.real == real)?;
            let vip = self.vip_of(id, None)?;
            Some(SocketAddr::new(IpAddr::V4(vip), l.guest_port))
        })
    }

    fn alloc_vip(&mut self, network: &str) -> Option<Ipv4Addr> {
        if !self.networks.contains_key(network) {
            let index = if network == DEFAULT_NETWORK {
                0
            } else {
                let used: BTreeSet<u8> = self.networks.values().map(|b| b.index).collect();
                (1..=255u8).find(|i| !used.contains(i))?
            };
            self.networks.insert(
                network.to_string(),
                NetBlock {
                    index,
                    used: BTreeSet::new(),
                },
            );
        }
        let block = self.networks.get_mut(network)?;
        let host = (2..=254u8).find(|h| !block.used.contains(h))?;
        block.used.insert(host);
        Some(Ipv4Addr::new(
            VIP_PREFIX[0],
            VIP_PREFIX[1],
            block.index,
            host,
        ))
    }

    fn free_vip(&mut self, network: &str, vip: Ipv4Addr) {
        if let Some(block) = self.networks.get_mut(network) {
            block.used.remove(&vip.octets()[3]);
            if block.used.is_empty() {
                self.networks.remove(network);
            }
        }
    }
}

impl NetRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Puts a container on its networks: allocates its virtual addresses and makes its name
    /// resolvable by the other members of its user-defined networks. The returned guard
    /// detaches it (and drops its listeners) when the last attachment of that id is dropped.
    pub fn attach(&self, net: &ContainerNet) -> Attachment {
        let mut inner = lock(&self.inner);
        if let Some(m) = inner.members.get_mut(&net.id) {
            m.refs += 1;
        } else {
            let mut networks = net.networks.clone();
            if networks.is_empty() {
                networks.push(DEFAULT_NETWORK.to_string());
            }
            let mut vips = Vec::new();
            for n in &networks {
                match inner.alloc_vip(n) {
                    Some(vip) => vips.push((n.clone(), vip)),
                    None => {
                        tracing::warn!(network = %n, container = %net.id, "no free virtual address")
                    }
                }
            }
            inner.members.insert(
                net.id.clone(),
                Member {
                    name: net.name.clone(),
                    vips,
                    refs: 1,
                },
            );
        }
        Attachment {
            inner: Arc::downgrade(&self.inner),
            id: net.id.clone(),
        }
    }

    /// The virtual addresses of an attached container, per network.
    pub fn addresses(&self, container_id: &str) -> Vec<(String, Ipv4Addr)> {
        lock(&self.inner)
            .members
            .get(container_id)
            .map(|m| m.vips.clone())
            .unwrap_or_default()
    }

    /// Registers a TCP listener of `container_id` for container port `guest_port` at the real
    /// address `real`, reachable by the container's name (on its user networks) and virtual
    /// addresses. The guard unregisters it on drop.
    pub fn register_listener(
        &self,
        container_id: &str,
        guest_port: u16,
        real: SocketAddr,
    ) -> ListenerGuard {
        self.register(container_id, Proto::Tcp, guest_port, real, false)
    }

    pub(crate) fn register(
        &self,
        container_id: &str,
        proto: Proto,
        guest_port: u16,
        real: SocketAddr,
        local_only: bool,
    ) -> ListenerGuard {
        // A wildcard listener is reached through loopback (a connect to 0.0.0.0 is refused).
        let real = if real.ip().is_unspecified() {
            let lo = if real.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            };
            SocketAddr::new(lo, real.port())
        } else {
            real
        };
        let mut inner = lock(&self.inner);
        inner.next_token += 1;
        let token = inner.next_token;
        inner
            .listeners
            .entry(container_id.to_string())
            .or_default()
            .push(Listener {
                token,
                proto,
                guest_port,
                real,
                local_only,
            });
        ListenerGuard {
            inner: Arc::downgrade(&self.inner),
            id: container_id.to_string(),
            token,
        }
    }

    /// The real (loopback) address of the TCP listener that `from` reaches as `host:port`,
    /// when `host` is a container name visible to `from` (shared user-defined network), the
    /// virtual address of a container sharing a network with it, or `localhost` / a loopback
    /// address with `from` itself listening on `port`. `None` when `host` is none of these
    /// (then the caller applies `from.egress` to what `host` resolves to) or nothing listens.
    pub fn route(&self, from: &ContainerNet, host: &str, port: u16) -> Option<SocketAddr> {
        let inner = lock(&self.inner);
        let ip = match normalise_host(host).parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match inner.lookup(from, host) {
                NameAnswer::Addr(ip) => ip,
                _ => return None,
            },
        };
        let ip = crate::policy::canonical(ip);
        if !is_loopback(ip) && !Inner::is_vip(ip) {
            return None;
        }
        match inner.route(from, Proto::Tcp, SocketAddr::new(ip, port), None) {
            Route::Container { real, .. } => Some(real),
            _ => None,
        }
    }

    /// Whether `name` is a container name that `from` may not see (answer "not found" rather
    /// than asking the host resolver).
    pub fn hides(&self, from: &ContainerNet, name: &str) -> bool {
        lock(&self.inner).lookup(from, name) == NameAnswer::NotFound
    }

    pub(crate) fn lookup(&self, from: &ContainerNet, name: &str) -> NameAnswer {
        lock(&self.inner).lookup(from, name)
    }

    pub(crate) fn route_addr(
        &self,
        from: &ContainerNet,
        proto: Proto,
        target: SocketAddr,
        v4: bool,
    ) -> Route {
        lock(&self.inner).route(from, proto, target, Some(v4))
    }

    pub(crate) fn virtual_of_real(&self, proto: Proto, real: SocketAddr) -> Option<SocketAddr> {
        lock(&self.inner).virtual_of_real(proto, real)
    }

    pub(crate) fn vip(&self, container_id: &str) -> Option<Ipv4Addr> {
        lock(&self.inner).vip_of(container_id, None)
    }

    /// Records that the socket with real local address `real_local` is a container client
    /// appearing as `virt_local`, connected to `virt_remote`.
    pub(crate) fn register_outbound(
        &self,
        real_local: SocketAddr,
        virt_local: SocketAddr,
        virt_remote: SocketAddr,
    ) -> OutboundGuard {
        lock(&self.inner)
            .outbound
            .insert(real_local, (virt_local, virt_remote));
        OutboundGuard {
            inner: Arc::downgrade(&self.inner),
            real_local,
        }
    }

    /// For a peer address seen by a container listener: the virtual (client, server) pair.
    pub(crate) fn outbound(&self, real_peer: SocketAddr) -> Option<(SocketAddr, SocketAddr)> {
        lock(&self.inner).outbound.get(&real_peer).copied()
    }
}

/// A container's place on its networks; dropping it detaches the container.
#[derive(Debug)]
#[must_use = "dropping the attachment detaches the container at once"]
pub struct Attachment {
    inner: Weak<Mutex<Inner>>,
    id: String,
}

impl Attachment {
    pub fn container_id(&self) -> &str {
        &self.id
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut inner = lock(&inner);
        let Some(m) = inner.members.get_mut(&self.id) else {
            return;
        };
        m.refs -= 1;
        if m.refs > 0 {
            return;
        }
        if let Some(m) = inner.members.remove(&self.id) {
            for (net, vip) in m.vips {
                inner.free_vip(&net, vip);
            }
        }
    }
}

/// A registered listener; dropping it unregisters the listener.
#[derive(Debug)]
#[must_use = "dropping the guard unregisters the listener at once"]
pub struct ListenerGuard {
    inner: Weak<Mutex<Inner>>,
    id: String,
    token: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut inner = lock(&inner);
        if let Some(ls) = inner.listeners.get_mut(&self.id) {
            ls.retain(|l| l.token != self.token);
            if ls.is_empty() {
                inner.listeners.remove(&self.id);
            }
        }
    }
}

/// A registered outbound container-to-container socket; dropping it forgets the mapping.
#[derive(Debug)]
pub(crate) struct OutboundGuard {
    inner: Weak<Mutex<Inner>>,
    real_local: SocketAddr,
}

impl Drop for OutboundGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner).outbound.remove(&self.real_local);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, name: &str, networks: &[&str]) -> ContainerNet {
        ContainerNet {
            id: id.into(),
            name: name.into(),
            networks: networks.iter().map(|s| s.to_string()).collect(),
            egress: EgressPolicy::default(),
            published: vec![],
        }
    }

    #[test]
    fn names_resolve_only_on_shared_user_networks() {
        let reg = NetRegistry::new();
        let web = net("aaaaaaaaaaaaaaaa", "web", &["app"]);
        let client = net("bbbbbbbbbbbbbbbb", "client", &["app"]);
        let other = net("cccccccccccccccc", "other", &["elsewhere"]);
        let bridged = net("dddddddddddddddd", "bridged", &["bridge"]);
        let bridged2 = net("eeeeeeeeeeeeeeee", "bridged2", &["bridge"]);
        let _a = reg.attach(&web);
        let _b = reg.attach(&client);
        let _c = reg.attach(&other);
        let _d = reg.attach(&bridged);
        let _e = reg.attach(&bridged2);
        let real: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let guard = reg.register_listener(&web.id, 80, real);
        assert_eq!(reg.route(&client, "web", 80), Some(real));
        assert_eq!(reg.route(&client, "WEB.", 80), Some(real));
        assert_eq!(reg.route(&client, "web", 81), None);
        assert_eq!(reg.route(&other, "web", 80), None);
        assert!(reg.hides(&other, "web"));
        assert_eq!(reg.route(&web, "localhost", 80), Some(real));
        assert_eq!(reg.route(&client, "localhost", 80), None);
        let vip = reg.addresses(&web.id)[0].1;
        assert_eq!(vip.octets()[..2], [10, 89]);
        assert_eq!(reg.route(&client, &vip.to_string(), 80), Some(real));
        assert_eq!(reg.route(&other, &vip.to_string(), 80), None);
        // bridge: no names, but addresses work
        assert_eq!(reg.lookup(&bridged2, "bridged"), NameAnswer::NotFound);
        assert_eq!(reg.lookup(&bridged2, "example.com"), NameAnswer::External);
        drop(guard);
        assert_eq!(reg.route(&client, "web", 80), None);
    }

    #[test]
    fn detach_frees_addresses_and_listeners() {
        let reg = NetRegistry::new();
        let a = net("a", "a", &["n"]);
        let att = reg.attach(&a);
        let first = reg.addresses("a");
        let _l = reg.register_listener("a", 80, "127.0.0.1:1".parse().unwrap());
        drop(att);
        assert!(reg.addresses("a").is_empty());
        assert!(lock(&reg.inner).networks.is_empty());
        let _att = reg.attach(&a);
        assert_eq!(reg.addresses("a"), first);
    }

    #[test]
    fn routes_apply_the_egress_policy() {
        let reg = NetRegistry::new();
        let a = net("a", "a", &["bridge"]);
        let _att = reg.attach(&a);
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            reg.route_addr(&a, Proto::Tcp, sa("127.0.0.1:22"), true),
            Route::Denied
        );
        assert_eq!(
            reg.route_addr(&a, Proto::Tcp, sa("10.1.2.3:22"), true),
            Route::Denied
        );
        assert_eq!(
            reg.route_addr(&a, Proto::Tcp, sa("10.89.7.7:22"), true),
            Route::Refused
        );
        assert_eq!(
            reg.route_addr(&a, Proto::Tcp, sa("1.1.1.1:443"), true),
            Route::Egress(sa("1.1.1.1:443"))
        );
    }
}
