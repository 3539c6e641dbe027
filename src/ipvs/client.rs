//! The thin socket layer: a generic netlink socket (neli) carrying the
//! requests [`wire`](super::wire) encodes, with kernel errors turned into
//! messages an operator can act on.

use neli::consts::nl::NlmF;
use neli::consts::socket::NlFamily;
use neli::err::RouterError;
use neli::nl::NlPayload;
use neli::router::synchronous::NlRouter;
use neli::types::Buffer;
use neli::utils::Groups;

use super::model::{Dest, Service, ServiceKey, SyncDaemon, SyncState, Timeouts};
use super::reconcile::Op;
use super::wire::{self, cmd};

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    #[error("IPVS is not available on this kernel (no generic netlink family IPVS: load ip_vs)")]
    NotAvailable,
    #[error("{what}: permission denied (needs root or CAP_NET_ADMIN)")]
    PermissionDenied { what: String },
    #[error("{what}: no such scheduler `{scheduler}` (load ip_vs_{scheduler})")]
    NoScheduler { what: String, scheduler: String },
    #[error("{what}: the service exists already")]
    ServiceExists { what: String },
    #[error("{what}: the destination exists already")]
    DestExists { what: String },
    #[error("{what}: no such service")]
    NoService { what: String },
    #[error("{what}: no such destination")]
    NoDest { what: String },
    #[error("{what}: a sync daemon in this state runs already")]
    DaemonRunning { what: String },
    #[error("{what}: no such sync daemon running")]
    NoDaemon { what: String },
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("{what}: {source} (errno {errno})")]
    Kernel {
        what: String,
        errno: i32,
        source: std::io::Error,
    },
    #[error("{what}: netlink: {detail}")]
    Netlink { what: String, detail: String },
    #[error("{what}: malformed reply: {source}")]
    Decode {
        what: String,
        source: wire::DecodeError,
    },
}

const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EPERM: i32 = 1;
const EEXIST: i32 = 17;

/// A connection to the kernel's IPVS over generic netlink.
pub struct Client {
    router: NlRouter,
    family: u16,
}

impl Client {
    /// Opens a generic netlink socket and resolves the IPVS family.
    pub fn connect() -> Result<Client, IpvsError> {
        let (router, _) =
            NlRouter::connect(NlFamily::Generic, None, Groups::empty()).map_err(|e| {
                IpvsError::Netlink {
                    what: "open a generic netlink socket".into(),
                    detail: e.to_string(),
                }
            })?;
        let family = router
            .resolve_genl_family(wire::FAMILY)
            .map_err(|_| IpvsError::NotAvailable)?;
        Ok(Client { router, family })
    }

    /// Sends one request (generic netlink command `command` with
    /// attributes `attrs`) without waiting for its answer.
    fn submit(
        &self,
        what: &dyn Fn() -> String,
        command: u8,
        attrs: &[u8],
        dump: bool,
        scheduler: Option<&str>,
    ) -> Result<Replies, IpvsError> {
        let mut payload = Vec::with_capacity(4 + attrs.len());
        payload.extend_from_slice(&[command, wire::VERSION, 0, 0]);
        payload.extend_from_slice(attrs);
        let flags = if dump { NlmF::DUMP } else { NlmF::ACK };
        self.router
            .send::<u16, Buffer, u16, Buffer>(
                self.family,
                flags,
                NlPayload::Payload(Buffer::from(payload)),
            )
            .map_err(|e| classify(what(), command, e, scheduler))
    }

    /// Sends one request and returns the attributes of every reply.
    fn request(
        &self,
        what: &dyn Fn() -> String,
        command: u8,
        attrs: &[u8],
        dump: bool,
        scheduler: Option<&str>,
    ) -> Result<Vec<Vec<u8>>, IpvsError> {
        let replies = self.submit(what, command, attrs, dump, scheduler)?;
        collect(replies, what, command, scheduler)
    }

    /// Sends the requests of `ops` (see [`Client::apply`]) up to `window`
    /// at a time before reading their acknowledgements: a large table is
    /// programmed without one round trip per rule.
    pub fn apply_pipelined(&self, ops: &[Request], window: usize) -> Result<(), IpvsError> {
        for chunk in ops.chunks(window.max(1)) {
            let mut pending = Vec::with_capacity(chunk.len());
            for r in chunk {
                let what = || r.what.clone();
                pending.push(self.submit(
                    &what,
                    r.command,
                    &r.attrs,
                    false,
                    r.scheduler.as_deref(),
                )?);
            }
            for (r, replies) in chunk.iter().zip(pending) {
                let what = || r.what.clone();
                collect(replies, &what, r.command, r.scheduler.as_deref())?;
            }
        }
        Ok(())
    }
}

type Replies = neli::router::synchronous::NlRouterReceiverHandle<u16, Buffer>;

/// One request to send: command, attributes and how to name it in errors.
pub struct Request {
    pub command: u8,
    pub attrs: Vec<u8>,
    pub what: String,
    /// For NEW/SET_SERVICE: the scheduler a missing module would be.
    pub scheduler: Option<String>,
}

/// What a request does, which gives a kernel errno its meaning (the
/// same errno means different things to different commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    AddService,
    SetService,
    DelService,
    AddDest,
    SetDest,
    DelDest,
    StartDaemon,
    StopDaemon,
    /// Dumps, info, timeouts, zero.
    Other,
}

impl OpKind {
    /// The kind of generic netlink command `command`.
    pub fn of(command: u8) -> OpKind {
        match command {
            cmd::NEW_SERVICE => OpKind::AddService,
            cmd::SET_SERVICE => OpKind::SetService,
            cmd::DEL_SERVICE => OpKind::DelService,
            cmd::NEW_DEST => OpKind::AddDest,
            cmd::SET_DEST => OpKind::SetDest,
            cmd::DEL_DEST => OpKind::DelDest,
            cmd::NEW_DAEMON => OpKind::StartDaemon,
            cmd::DEL_DAEMON => OpKind::StopDaemon,
            _ => OpKind::Other,
        }
    }
}

/// The error for a kernel's negative acknowledgement `errno` of a request
/// of `kind` (named `what`); `scheduler` is the service's, for
/// NEW/SET_SERVICE. Pure, so every case is tested without a kernel
/// (net/netfilter/ipvs/ip_vs_ctl.c: ip_vs_genl_set_cmd and the functions
/// it calls).
pub fn error_for(errno: i32, kind: OpKind, what: String, scheduler: Option<&str>) -> IpvsError {
    use OpKind::*;
    match (errno.abs(), kind) {
        // GENL_ADMIN_PERM: every IPVS command, reads included.
        (EPERM, _) => IpvsError::PermissionDenied { what },
        // ip_vs_scheduler_get (or the persistence engine) found no module.
        (ENOENT, AddService | SetService) => IpvsError::NoScheduler {
            what,
            scheduler: scheduler.unwrap_or_default().to_string(),
        },
        (EEXIST, AddService) => IpvsError::ServiceExists { what },
        (EEXIST, AddDest) => IpvsError::DestExists { what },
        (EEXIST, StartDaemon) => IpvsError::DaemonRunning { what },
        (ESRCH, StopDaemon) => IpvsError::NoDaemon { what },
        // Any command naming a service that is not there.
        (ESRCH, _) => IpvsError::NoService { what },
        (ENOENT, SetDest | DelDest) => IpvsError::NoDest { what },
        (errno, _) => IpvsError::Kernel {
            what,
            errno,
            source: std::io::Error::from_raw_os_error(errno),
        },
    }
}

fn collect(
    replies: Replies,
    what: &dyn Fn() -> String,
    command: u8,
    scheduler: Option<&str>,
) -> Result<Vec<Vec<u8>>, IpvsError> {
    {
        let mut out = Vec::new();
        for reply in replies {
            let msg = reply.map_err(|e| classify(what(), command, e, scheduler))?;
            if let Some(p) = msg.get_payload() {
                let bytes: &[u8] = p.as_ref();
                let (_, attrs) = wire::genl_attrs(bytes).map_err(|source| IpvsError::Decode {
                    what: what(),
                    source,
                })?;
                out.push(attrs.to_vec());
            }
        }
        Ok(out)
    }
}

impl Client {
    /// Every virtual service.
    pub fn services(&self) -> Result<Vec<Service>, IpvsError> {
        let what = || "list IPVS services".to_string();
        self.request(&what, cmd::GET_SERVICE, &[], true, None)?
            .iter()
            .map(|a| {
                wire::decode_service(a).map_err(|source| IpvsError::Decode {
                    what: what(),
                    source,
                })
            })
            .collect()
    }

    /// The destinations of one service, in the kernel's order.
    pub fn dests(&self, key: &ServiceKey) -> Result<Vec<Dest>, IpvsError> {
        let what = || format!("list the destinations of {key}");
        self.request(
            &what,
            cmd::GET_DEST,
            &wire::dest_dump_request(key),
            true,
            None,
        )?
        .iter()
        .map(|a| {
            wire::decode_dest(a, key.is_ipv6()).map_err(|source| IpvsError::Decode {
                what: what(),
                source,
            })
        })
        .collect()
    }

    /// Every service with its destinations.
    pub fn dump(&self) -> Result<Vec<(Service, Vec<Dest>)>, IpvsError> {
        self.services()?
            .into_iter()
            .map(|s| {
                let d = self.dests(&s.key)?;
                Ok((s, d))
            })
            .collect()
    }

    pub fn new_service(&self, s: &Service) -> Result<(), IpvsError> {
        let what = || format!("add service {}", s.key);
        self.request(
            &what,
            cmd::NEW_SERVICE,
            &wire::service_request(s),
            false,
            Some(&s.scheduler),
        )
        .map(drop)
    }

    pub fn set_service(&self, s: &Service) -> Result<(), IpvsError> {
        let what = || format!("change service {}", s.key);
        self.request(
            &what,
            cmd::SET_SERVICE,
            &wire::service_request(s),
            false,
            Some(&s.scheduler),
        )
        .map(drop)
    }

    pub fn del_service(&self, key: &ServiceKey) -> Result<(), IpvsError> {
        let what = || format!("delete service {key}");
        self.request(
            &what,
            cmd::DEL_SERVICE,
            &wire::service_key_request(key),
            false,
            None,
        )
        .map(drop)
    }

    pub fn new_dest(&self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        let what = || format!("add destination {} to {key}", d.addr);
        self.request(
            &what,
            cmd::NEW_DEST,
            &wire::dest_request(key, d),
            false,
            None,
        )
        .map(drop)
    }

    pub fn set_dest(&self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        let what = || format!("change destination {} of {key}", d.addr);
        self.request(
            &what,
            cmd::SET_DEST,
            &wire::dest_request(key, d),
            false,
            None,
        )
        .map(drop)
    }

    pub fn del_dest(&self, key: &ServiceKey, d: &Dest) -> Result<(), IpvsError> {
        let what = || format!("delete destination {} of {key}", d.addr);
        self.request(
            &what,
            cmd::DEL_DEST,
            &wire::dest_request(key, d),
            false,
            None,
        )
        .map(drop)
    }

    /// IPVS version and connection table size.
    pub fn info(&self) -> Result<(String, u32), IpvsError> {
        let what = || "read IPVS info".to_string();
        let replies = self.request(&what, cmd::GET_INFO, &[], false, None)?;
        let first = replies.first().ok_or_else(|| IpvsError::Netlink {
            what: what(),
            detail: "no reply".into(),
        })?;
        wire::decode_info(first).map_err(|source| IpvsError::Decode {
            what: what(),
            source,
        })
    }

    /// Zeroes the counters of one service, or of every service.
    pub fn zero(&self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        let what = || match key {
            Some(k) => format!("zero the counters of {k}"),
            None => "zero the counters".to_string(),
        };
        self.request(&what, cmd::ZERO, &wire::zero_request(key), false, None)
            .map(drop)
    }

    /// The TCP, TCP FIN and UDP connection timeouts.
    pub fn timeouts(&self) -> Result<Timeouts, IpvsError> {
        let what = || "read the timeouts".to_string();
        let replies = self.request(&what, cmd::GET_CONFIG, &[], false, None)?;
        let first = replies.first().ok_or_else(|| IpvsError::Netlink {
            what: what(),
            detail: "no reply".into(),
        })?;
        wire::decode_timeouts(first).map_err(|source| IpvsError::Decode {
            what: what(),
            source,
        })
    }

    /// Sets the TCP, TCP FIN and UDP timeouts (a 0 leaves that one).
    pub fn set_timeouts(&self, t: &Timeouts) -> Result<(), IpvsError> {
        self.request(
            &|| "set the timeouts".into(),
            cmd::SET_CONFIG,
            &wire::timeouts_request(t),
            false,
            None,
        )
        .map(drop)
    }

    /// The running connection sync daemons (none, or a master and/or a
    /// backup).
    pub fn daemons(&self) -> Result<Vec<SyncDaemon>, IpvsError> {
        let what = || "list the sync daemons".to_string();
        self.request(&what, cmd::GET_DAEMON, &[], true, None)?
            .iter()
            .map(|a| {
                wire::decode_daemon(a).map_err(|source| IpvsError::Decode {
                    what: what(),
                    source,
                })
            })
            .collect()
    }

    /// Starts a connection sync daemon.
    pub fn start_daemon(&self, d: &SyncDaemon) -> Result<(), IpvsError> {
        let what = || {
            format!(
                "start the {} sync daemon on {}",
                d.state.name(),
                d.interface
            )
        };
        // IP_VS_IFNAME_MAXLEN, with its NUL.
        if d.interface.is_empty() || d.interface.len() > 15 {
            return Err(IpvsError::Invalid {
                what: what(),
                detail: "the interface name must have 1 to 15 bytes".into(),
            });
        }
        self.request(
            &what,
            cmd::NEW_DAEMON,
            &wire::daemon_start_request(d),
            false,
            None,
        )
        .map(drop)
    }

    /// Stops the sync daemon in `state`.
    pub fn stop_daemon(&self, state: SyncState) -> Result<(), IpvsError> {
        let what = || format!("stop the {} sync daemon", state.name());
        self.request(
            &what,
            cmd::DEL_DAEMON,
            &wire::daemon_stop_request(state),
            false,
            None,
        )
        .map(drop)
    }
}

fn classify<T: std::fmt::Debug, P: std::fmt::Debug>(
    what: String,
    command: u8,
    e: RouterError<T, P>,
    scheduler: Option<&str>,
) -> IpvsError {
    match e {
        RouterError::Nlmsgerr(m) => error_for(*m.error(), OpKind::of(command), what, scheduler),
        e => IpvsError::Netlink {
            what,
            detail: e.to_string(),
        },
    }
}

/// The request carrying one reconcile operation.
pub fn request_of(op: &Op) -> Request {
    let (command, attrs, what, scheduler) = match op {
        Op::NewService(s) => (
            cmd::NEW_SERVICE,
            wire::service_request(s),
            format!("add service {}", s.key),
            Some(s.scheduler.clone()),
        ),
        Op::SetService(s) => (
            cmd::SET_SERVICE,
            wire::service_request(s),
            format!("change service {}", s.key),
            Some(s.scheduler.clone()),
        ),
        Op::DelService(k) => (
            cmd::DEL_SERVICE,
            wire::service_key_request(k),
            format!("delete service {k}"),
            None,
        ),
        Op::NewDest(k, d) => (
            cmd::NEW_DEST,
            wire::dest_request(k, d),
            format!("add destination {} to {k}", d.addr),
            None,
        ),
        Op::SetDest(k, d) => (
            cmd::SET_DEST,
            wire::dest_request(k, d),
            format!("change destination {} of {k}", d.addr),
            None,
        ),
        Op::DelDest(k, d) => (
            cmd::DEL_DEST,
            wire::dest_request(k, d),
            format!("delete destination {} of {k}", d.addr),
            None,
        ),
    };
    Request {
        command,
        attrs,
        what,
        scheduler,
    }
}

impl Client {
    /// Applies reconcile operations in order, pipelined 64 at a time; the
    /// first failure stops it (the next reconcile sees where it stopped).
    pub fn apply(&self, ops: &[Op]) -> Result<(), IpvsError> {
        let requests: Vec<Request> = ops.iter().map(request_of).collect();
        self.apply_pipelined(&requests, 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(errno: i32, command: u8) -> String {
        error_for(-errno, OpKind::of(command), "WHAT".into(), Some("nosuch")).to_string()
    }

    /// Each errno as ip_vs_ctl.c returns it (the golden capture holds the
    /// kernel's actual answers for most of them).
    #[test]
    fn kernel_errors_read_clearly() {
        assert_eq!(
            msg(ENOENT, cmd::NEW_SERVICE),
            "WHAT: no such scheduler `nosuch` (load ip_vs_nosuch)"
        );
        assert_eq!(
            msg(EEXIST, cmd::NEW_SERVICE),
            "WHAT: the service exists already"
        );
        assert_eq!(
            msg(EEXIST, cmd::NEW_DEST),
            "WHAT: the destination exists already"
        );
        for c in [cmd::DEL_SERVICE, cmd::SET_SERVICE, cmd::NEW_DEST, cmd::ZERO] {
            assert_eq!(msg(ESRCH, c), "WHAT: no such service");
        }
        for c in [cmd::SET_DEST, cmd::DEL_DEST] {
            assert_eq!(msg(ENOENT, c), "WHAT: no such destination");
        }
        assert_eq!(
            msg(EPERM, cmd::GET_SERVICE),
            "WHAT: permission denied (needs root or CAP_NET_ADMIN)"
        );
        assert_eq!(
            msg(EEXIST, cmd::NEW_DAEMON),
            "WHAT: a sync daemon in this state runs already"
        );
        assert_eq!(
            msg(ESRCH, cmd::DEL_DAEMON),
            "WHAT: no such sync daemon running"
        );
        let other = msg(22, cmd::NEW_DEST);
        assert!(
            other.starts_with("WHAT: Invalid argument") && other.ends_with("(errno 22)"),
            "{other}"
        );
    }
}
