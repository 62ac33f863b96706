//! The wasi:sockets wrapper: wasmtime-wasi's own host implementation (on
//! [`WasiSocketsCtxView`]) with addresses rewritten per container.
//!
//! `wasi:sockets/tcp`, `wasi:sockets/udp` and `wasi:sockets/ip-name-lookup` are shadowed in the
//! component linker by [`add_to_linker`]; every method delegates to the built-in
//! implementation, after mapping the guest's virtual addresses to real ones (binds, connects,
//! datagrams, lookups) and before mapping real addresses back (`local-address`,
//! `remote-address`, datagram sources). Per-socket state is keyed by the resource rep and
//! removed in the `drop` overrides (reps are reused).
//!
//! Known limits:
//! - a TCP socket the guest binds explicitly is bound to loopback, so it can then only
//!   connect to containers (`std`'s `TcpStream::connect` never binds first);
//! - a published port is bound when the guest binds it, not at container start;
//! - peers that are not containers (the host through a published port) show their real
//!   loopback address.

use super::{
    Attachment, ContainerNet, ListenerGuard, NameAnswer, NetRegistry, OutboundGuard, Proto, Route,
};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{self, HostTcpSocket, ShutdownType, TcpSocket};
use wasmtime_wasi::p2::bindings::sockets::udp::{
    self, HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

/// The network of one container, as its store holds it.
struct Ctx {
    net: Arc<ContainerNet>,
    registry: Arc<NetRegistry>,
}

/// Per-store network state: the container's view and per-socket bookkeeping. Dropping it
/// (with the store) detaches the container and unregisters its listeners.
#[derive(Default)]
pub struct NetView {
    ctx: Option<Arc<Ctx>>,
    tcp: HashMap<u32, TcpState>,
    udp: HashMap<u32, UdpState>,
    // Dropped after the socket maps (field order), so listeners go before the container.
    _attachment: Option<Attachment>,
}

impl NetView {
    /// The view of `net`, attached to `registry`; `None` is `--network none`.
    pub fn new(registry: &Arc<NetRegistry>, net: Option<Arc<ContainerNet>>) -> Self {
        match net {
            None => Self::default(),
            Some(net) => Self {
                _attachment: Some(registry.attach(&net)),
                ctx: Some(Arc::new(Ctx {
                    net,
                    registry: registry.clone(),
                })),
                ..Self::default()
            },
        }
    }
}

#[derive(Default)]
struct TcpState {
    /// The address the guest bound (port 0 until listening) or appears to have.
    virt_local: Option<SocketAddr>,
    /// The guest bound its own loopback: listeners are reachable from itself only.
    local_only: bool,
    /// The address the guest connected to, or the virtual peer of an accepted socket.
    virt_remote: Option<SocketAddr>,
    _listener: Option<ListenerGuard>,
    _outbound: Option<OutboundGuard>,
}

#[derive(Default)]
struct UdpState {
    virt_local: Option<SocketAddr>,
    virt_remote: Option<SocketAddr>,
    _listener: Option<ListenerGuard>,
}

/// What the shadowed interfaces see of the store.
pub struct NetCtxView<'a> {
    pub sockets: WasiSocketsCtxView<'a>,
    pub net: &'a mut NetView,
}

/// [`HasData`] for the shadowed interfaces.
pub struct BerthSockets;

impl HasData for BerthSockets {
    type Data<'a> = NetCtxView<'a>;
}

/// Replaces tcp, udp and ip-name-lookup (already linked by
/// `wasmtime_wasi::p2::add_to_linker_async`) with the wrapper.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> NetCtxView<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = (|| {
        tcp::add_to_linker::<T, BerthSockets>(linker, get)?;
        udp::add_to_linker::<T, BerthSockets>(linker, get)?;
        ip_name_lookup::add_to_linker::<T, BerthSockets>(linker, get)
    })();
    linker.allow_shadowing(false);
    result
}

/// Grants sockets to a container with a network (none at all for `None`) and installs the
/// second layer behind the wrapper: wasmtime-wasi's check on the real addresses. It lets
/// through what the egress policy allows and loopback (where the wrapper sends connects to
/// container listeners, after deciding who may reach them); private ranges, link-local and
/// the rest stay denied even if the wrapper were bypassed.
pub fn configure(b: &mut WasiCtxBuilder, net: Option<&Arc<ContainerNet>>) {
    let Some(net) = net else {
        // Defaults: no TCP, no UDP, no lookup, every address denied.
        return;
    };
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(true);
    let net = net.clone();
    b.socket_addr_check(move |addr, use_| {
        let ok = match use_ {
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => {
                net.egress.allows(addr) || crate::policy::canonical(addr.ip()).is_loopback()
            }
            // Binds are chosen by the wrapper; accepted clients and received datagrams are
            // limited by who can reach the real addresses in the first place.
            SocketAddrUse::TcpBind
            | SocketAddrUse::TcpListen
            | SocketAddrUse::TcpAccept
            | SocketAddrUse::UdpBind
            | SocketAddrUse::UdpReceive => true,
        };
        // Must be ready at once: `start-connect` drives binds with `poll_noop`.
        Box::pin(std::future::ready(ok))
    });
}

fn loopback(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    }
}

fn unspecified(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// `ip` in the family of the socket, for published host addresses.
fn in_family(ip: IpAddr, v4: bool) -> Option<IpAddr> {
    match (ip, v4) {
        (IpAddr::V4(_), true) | (IpAddr::V6(_), false) => Some(ip),
        (ip, v4) if ip.is_unspecified() => Some(unspecified(v4)),
        (ip, v4) if ip.is_loopback() => Some(loopback(v4)),
        (IpAddr::V6(v6), true) => v6.to_ipv4_mapped().map(IpAddr::V4),
        (IpAddr::V4(v4), false) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
    }
}

/// Addresses the built-in refuses anyway (wrong family, multicast, broadcast): passed through
/// unchanged so the guest gets the built-in's error.
fn passthrough(addr: SocketAddr, v4: bool) -> bool {
    addr.is_ipv4() != v4
        || addr.ip().is_multicast()
        || matches!(addr.ip(), IpAddr::V4(ip) if ip.is_broadcast())
}

fn borrow<T: 'static>(rep: u32) -> Resource<T> {
    Resource::new_borrow(rep)
}

fn error(code: ErrorCode) -> SocketError {
    code.into()
}

impl NetCtxView<'_> {
    fn ctx(&self) -> Option<Arc<Ctx>> {
        self.net.ctx.clone()
    }

    fn tcp_is_v4(&mut self, rep: u32) -> wasmtime::Result<bool> {
        Ok(matches!(
            HostTcpSocket::address_family(&mut self.sockets, borrow(rep))?,
            IpAddressFamily::Ipv4
        ))
    }

    fn udp_is_v4(&mut self, rep: u32) -> wasmtime::Result<bool> {
        Ok(matches!(
            HostUdpSocket::address_family(&mut self.sockets, borrow(rep))?,
            IpAddressFamily::Ipv4
        ))
    }

    fn tcp_real_local(&mut self, rep: u32) -> SocketResult<SocketAddr> {
        Ok(HostTcpSocket::local_address(&mut self.sockets, borrow(rep))?.into())
    }
}

impl tcp::Host for NetCtxView<'_> {}

impl HostTcpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let rep = this.rep();
        let Some(ctx) = self.ctx() else {
            return HostTcpSocket::start_bind(&mut self.sockets, this, network, local_address)
                .await;
        };
        let guest = SocketAddr::from(local_address);
        let v4 = self.tcp_is_v4(rep).map_err(SocketError::trap)?;
        if passthrough(guest, v4) {
            return HostTcpSocket::start_bind(&mut self.sockets, this, network, local_address)
                .await;
        }
        let local_only = guest.ip().is_loopback();
        let published = (!local_only && guest.port() != 0)
            .then(|| ctx.net.published_port(Proto::Tcp, guest.port()))
            .flatten()
            .and_then(|p| Some(SocketAddr::new(in_family(p.host_ip, v4)?, p.host_port)));
        let real = published.unwrap_or(SocketAddr::new(loopback(v4), 0));
        HostTcpSocket::start_bind(&mut self.sockets, this, network, real.into()).await?;
        let state = self.net.tcp.entry(rep).or_default();
        state.virt_local = Some(guest);
        state.local_only = local_only;
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        HostTcpSocket::finish_bind(&mut self.sockets, this)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let rep = this.rep();
        let Some(ctx) = self.ctx() else {
            return HostTcpSocket::start_connect(&mut self.sockets, this, network, remote_address);
        };
        let target = SocketAddr::from(remote_address);
        let v4 = self.tcp_is_v4(rep).map_err(SocketError::trap)?;
        if passthrough(target, v4) || target.port() == 0 || target.ip().is_unspecified() {
            return HostTcpSocket::start_connect(&mut self.sockets, this, network, remote_address);
        }
        match ctx.registry.route_addr(&ctx.net, Proto::Tcp, target, v4) {
            Route::Denied => Err(error(ErrorCode::AccessDenied)),
            Route::Refused => Err(error(ErrorCode::ConnectionRefused)),
            Route::Egress(addr) => {
                HostTcpSocket::start_connect(&mut self.sockets, this, network, addr.into())?;
                self.net.tcp.entry(rep).or_default().virt_remote = Some(target);
                Ok(())
            }
            Route::Container { real, virt_local } => {
                // Bind first, so the listener's side can map this client's real address to
                // its virtual one even if it accepts before we run `finish-connect`.
                let explicitly_bound = self
                    .net
                    .tcp
                    .get(&rep)
                    .is_some_and(|s| s.virt_local.is_some());
                if self.tcp_real_local(rep).is_err() {
                    let net_rep = network.rep();
                    let fut = HostTcpSocket::start_bind(
                        &mut self.sockets,
                        borrow(rep),
                        borrow(net_rep),
                        SocketAddr::new(loopback(v4), 0).into(),
                    );
                    let bound = {
                        let mut fut = std::pin::pin!(fut);
                        wasmtime_wasi::runtime::poll_noop(fut.as_mut())
                    };
                    match bound {
                        Some(result) => result?,
                        None => return Err(error(ErrorCode::WouldBlock)),
                    }
                    HostTcpSocket::finish_bind(&mut self.sockets, borrow(rep))?;
                }
                let real_local = self.tcp_real_local(rep)?;
                let virt_local = SocketAddr::new(virt_local, real_local.port());
                let guard = ctx
                    .registry
                    .register_outbound(real_local, virt_local, target);
                HostTcpSocket::start_connect(&mut self.sockets, this, network, real.into())?;
                let state = self.net.tcp.entry(rep).or_default();
                state.virt_remote = Some(target);
                state._outbound = Some(guard);
                if !explicitly_bound {
                    state.virt_local = Some(virt_local);
                }
                Ok(())
            }
        }
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        HostTcpSocket::finish_connect(&mut self.sockets, this)
    }

    async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        let rep = this.rep();
        HostTcpSocket::start_listen(&mut self.sockets, this).await?;
        let Some(ctx) = self.ctx() else {
            return Ok(());
        };
        let real = self.tcp_real_local(rep)?;
        let state = self.net.tcp.entry(rep).or_default();
        let guest_port = state
            .virt_local
            .map(|v| v.port())
            .filter(|p| *p != 0)
            .unwrap_or(real.port());
        state._listener = Some(ctx.registry.register(
            &ctx.net.id,
            Proto::Tcp,
            guest_port,
            real,
            state.local_only,
        ));
        Ok(())
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        HostTcpSocket::finish_listen(&mut self.sockets, this)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let rep = this.rep();
        let (socket, input, output) = HostTcpSocket::accept(&mut self.sockets, this)?;
        if let Some(ctx) = self.ctx() {
            let new_rep = socket.rep();
            let real_peer: Option<SocketAddr> =
                HostTcpSocket::remote_address(&mut self.sockets, borrow(new_rep))
                    .ok()
                    .map(Into::into);
            let real_local = self.tcp_real_local(new_rep).ok();
            let mut state = TcpState::default();
            if let Some((client, server)) = real_peer.and_then(|p| ctx.registry.outbound(p)) {
                state.virt_local = Some(server);
                state.virt_remote = Some(client);
            } else if let Some(listen) = self.net.tcp.get(&rep).and_then(|s| s.virt_local) {
                let port = if listen.port() == 0 {
                    real_local.map_or(0, |a| a.port())
                } else {
                    listen.port()
                };
                let ip = if listen.ip().is_unspecified() {
                    match (listen.is_ipv4(), ctx.registry.vip(&ctx.net.id)) {
                        (true, Some(vip)) => IpAddr::V4(vip),
                        _ => real_local.map_or(listen.ip(), |a| a.ip()),
                    }
                } else {
                    listen.ip()
                };
                state.virt_local = Some(SocketAddr::new(ip, port));
            }
            self.net.tcp.insert(new_rep, state);
        }
        Ok((socket, input, output))
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = SocketAddr::from(HostTcpSocket::local_address(&mut self.sockets, this)?);
        Ok(match self.net.tcp.get(&rep).and_then(|s| s.virt_local) {
            Some(v) if v.port() == 0 => SocketAddr::new(v.ip(), real.port()),
            Some(v) => v,
            None => real,
        }
        .into())
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = HostTcpSocket::remote_address(&mut self.sockets, this)?;
        Ok(match self.net.tcp.get(&rep).and_then(|s| s.virt_remote) {
            Some(v) => v.into(),
            None => real,
        })
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        HostTcpSocket::is_listening(&mut self.sockets, this)
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        HostTcpSocket::address_family(&mut self.sockets, this)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_listen_backlog_size(&mut self.sockets, this, value)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        HostTcpSocket::keep_alive_enabled(&mut self.sockets, this)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_enabled(&mut self.sockets, this, value)
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::keep_alive_idle_time(&mut self.sockets, this)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_idle_time(&mut self.sockets, this, value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::keep_alive_interval(&mut self.sockets, this)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_interval(&mut self.sockets, this, value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        HostTcpSocket::keep_alive_count(&mut self.sockets, this)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_count(&mut self.sockets, this, value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        HostTcpSocket::hop_limit(&mut self.sockets, this)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        HostTcpSocket::set_hop_limit(&mut self.sockets, this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::receive_buffer_size(&mut self.sockets, this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_receive_buffer_size(&mut self.sockets, this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::send_buffer_size(&mut self.sockets, this)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        HostTcpSocket::set_send_buffer_size(&mut self.sockets, this, value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        HostTcpSocket::subscribe(&mut self.sockets, this)
    }

    fn shutdown(
        &mut self,
        this: Resource<TcpSocket>,
        shutdown_type: ShutdownType,
    ) -> SocketResult<()> {
        HostTcpSocket::shutdown(&mut self.sockets, this, shutdown_type)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        self.net.tcp.remove(&this.rep());
        HostTcpSocket::drop(&mut self.sockets, this)
    }
}

impl udp::Host for NetCtxView<'_> {}

impl HostUdpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let rep = this.rep();
        let Some(ctx) = self.ctx() else {
            return HostUdpSocket::start_bind(&mut self.sockets, this, network, local_address)
                .await;
        };
        let guest = SocketAddr::from(local_address);
        let v4 = self.udp_is_v4(rep).map_err(SocketError::trap)?;
        if passthrough(guest, v4) {
            return HostUdpSocket::start_bind(&mut self.sockets, this, network, local_address)
                .await;
        }
        let local_only = guest.ip().is_loopback();
        let published = (!local_only && guest.port() != 0)
            .then(|| ctx.net.published_port(Proto::Udp, guest.port()))
            .flatten()
            .and_then(|p| Some(SocketAddr::new(in_family(p.host_ip, v4)?, p.host_port)));
        // Port 0 is a client socket: it must reach the outside, so it gets the wildcard.
        let real = match published {
            Some(real) => real,
            None if guest.port() == 0 && !local_only => SocketAddr::new(unspecified(v4), 0),
            None => SocketAddr::new(loopback(v4), 0),
        };
        HostUdpSocket::start_bind(&mut self.sockets, this, network, real.into()).await?;
        let real_local: SocketAddr =
            HostUdpSocket::local_address(&mut self.sockets, borrow(rep))?.into();
        let guest_port = if guest.port() == 0 {
            real_local.port()
        } else {
            guest.port()
        };
        let listener =
            ctx.registry
                .register(&ctx.net.id, Proto::Udp, guest_port, real_local, local_only);
        let state = self.net.udp.entry(rep).or_default();
        state.virt_local = Some(SocketAddr::new(guest.ip(), guest_port));
        state._listener = Some(listener);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> SocketResult<()> {
        HostUdpSocket::finish_bind(&mut self.sockets, this)
    }

    async fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<IncomingDatagramStream>,
        Resource<OutgoingDatagramStream>,
    )> {
        let rep = this.rep();
        let (Some(ctx), Some(remote)) = (self.ctx(), remote_address) else {
            if let Some(state) = self.net.udp.get_mut(&rep) {
                state.virt_remote = None;
            }
            return HostUdpSocket::stream(&mut self.sockets, this, remote_address).await;
        };
        let target = SocketAddr::from(remote);
        let v4 = self.udp_is_v4(rep).map_err(SocketError::trap)?;
        let real = if passthrough(target, v4) || target.port() == 0 || target.ip().is_unspecified()
        {
            target
        } else {
            match ctx.registry.route_addr(&ctx.net, Proto::Udp, target, v4) {
                Route::Denied => return Err(error(ErrorCode::AccessDenied)),
                Route::Refused => return Err(error(ErrorCode::ConnectionRefused)),
                Route::Egress(addr) => addr,
                Route::Container { real, .. } => real,
            }
        };
        let streams = HostUdpSocket::stream(&mut self.sockets, this, Some(real.into())).await?;
        self.net.udp.entry(rep).or_default().virt_remote = Some(target);
        Ok(streams)
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = HostUdpSocket::local_address(&mut self.sockets, this)?;
        Ok(match self.net.udp.get(&rep).and_then(|s| s.virt_local) {
            Some(v) => v.into(),
            None => real,
        })
    }

    fn remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = HostUdpSocket::remote_address(&mut self.sockets, this)?;
        Ok(match self.net.udp.get(&rep).and_then(|s| s.virt_remote) {
            Some(v) => v.into(),
            None => real,
        })
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        HostUdpSocket::address_family(&mut self.sockets, this)
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8> {
        HostUdpSocket::unicast_hop_limit(&mut self.sockets, this)
    }

    fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        HostUdpSocket::set_unicast_hop_limit(&mut self.sockets, this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        HostUdpSocket::receive_buffer_size(&mut self.sockets, this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostUdpSocket::set_receive_buffer_size(&mut self.sockets, this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        HostUdpSocket::send_buffer_size(&mut self.sockets, this)
    }

    fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        HostUdpSocket::set_send_buffer_size(&mut self.sockets, this, value)
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        HostUdpSocket::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.net.udp.remove(&this.rep());
        HostUdpSocket::drop(&mut self.sockets, this)
    }
}

impl HostIncomingDatagramStream for NetCtxView<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> SocketResult<Vec<IncomingDatagram>> {
        let mut datagrams =
            HostIncomingDatagramStream::receive(&mut self.sockets, this, max_results)?;
        if let Some(ctx) = self.ctx() {
            for d in &mut datagrams {
                let real = SocketAddr::from(d.remote_address);
                if let Some(virt) = ctx.registry.virtual_of_real(Proto::Udp, real) {
                    d.remote_address = virt.into();
                }
            }
        }
        Ok(datagrams)
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostIncomingDatagramStream::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        HostIncomingDatagramStream::drop(&mut self.sockets, this)
    }
}

impl HostOutgoingDatagramStream for NetCtxView<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> SocketResult<u64> {
        HostOutgoingDatagramStream::check_send(&mut self.sockets, this)
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> SocketResult<u64> {
        let Some(ctx) = self.ctx() else {
            return HostOutgoingDatagramStream::send(&mut self.sockets, this, datagrams);
        };
        // Route each datagram; the first refused one ends the batch (an error only if it is
        // the first, as the WIT requires once a datagram has been sent).
        let mut routed = Vec::with_capacity(datagrams.len());
        let mut refusal = None;
        for mut d in datagrams {
            if let Some(remote) = d.remote_address {
                let target = SocketAddr::from(remote);
                let invalid = target.port() == 0 || target.ip().is_unspecified();
                if !invalid {
                    let v4 = target.is_ipv4();
                    match ctx.registry.route_addr(&ctx.net, Proto::Udp, target, v4) {
                        Route::Denied => refusal = Some(ErrorCode::AccessDenied),
                        Route::Refused => refusal = Some(ErrorCode::ConnectionRefused),
                        Route::Egress(addr) => d.remote_address = Some(addr.into()),
                        Route::Container { real, .. } => d.remote_address = Some(real.into()),
                    }
                }
            }
            if refusal.is_some() {
                break;
            }
            routed.push(d);
        }
        match refusal {
            Some(code) if routed.is_empty() => Err(error(code)),
            _ => HostOutgoingDatagramStream::send(&mut self.sockets, this, routed),
        }
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostOutgoingDatagramStream::subscribe(&mut self.sockets, this)
    }

    async fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        HostOutgoingDatagramStream::drop(&mut self.sockets, this).await
    }
}

impl ip_name_lookup::Host for NetCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        let name = match self.ctx() {
            None => name,
            Some(ctx) => match ctx.registry.lookup(&ctx.net, &name) {
                // The built-in answers IP literals at once, without DNS.
                NameAnswer::Addr(ip) => ip.to_string(),
                NameAnswer::NotFound => return Err(error(ErrorCode::NameUnresolvable)),
                NameAnswer::External => name,
            },
        };
        ip_name_lookup::Host::resolve_addresses(&mut self.sockets, network, name)
    }
}

impl HostResolveAddressStream for NetCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        HostResolveAddressStream::resolve_next_address(&mut self.sockets, this)
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.sockets, this)
    }
}

impl network::Host for NetCtxView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, err)
    }
}

impl network::HostNetwork for NetCtxView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}
