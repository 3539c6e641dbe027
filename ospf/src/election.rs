//! Designated Router election, RFC 2328 section 9.4.

use std::net::Ipv4Addr;

/// A router taking part in the election on one broadcast network: the
/// calculating router itself, or a neighbour in state 2-Way or higher.
/// DR and BDR are named by interface address, as Hellos carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub router_id: Ipv4Addr,
    pub addr: Ipv4Addr,
    pub priority: u8,
    /// The DR this router declares in its Hellos (0.0.0.0 for none).
    pub dr: Ipv4Addr,
    /// The BDR this router declares in its Hellos (0.0.0.0 for none).
    pub bdr: Ipv4Addr,
}

/// The outcome: interface addresses of the DR and BDR, 0.0.0.0 for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elected {
    pub dr: Ipv4Addr,
    pub bdr: Ipv4Addr,
}

const NONE: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

/// Highest priority wins, then highest Router ID (RFC 2328 9.4 steps 2-3).
fn best<'a>(it: impl Iterator<Item = &'a Candidate>) -> Option<&'a Candidate> {
    it.max_by_key(|c| (c.priority, c.router_id))
}

/// Steps 2 and 3 once.
fn pass(all: &[Candidate]) -> Elected {
    // Routers with priority 0 are not eligible (step 1).
    let eligible = || all.iter().filter(|c| c.priority > 0);
    // Step 2: the BDR is chosen among routers not declaring themselves DR;
    // those declaring themselves BDR are preferred.
    let not_dr = || eligible().filter(|c| c.dr != c.addr);
    let bdr = best(not_dr().filter(|c| c.bdr == c.addr))
        .or_else(|| best(not_dr()))
        .map_or(NONE, |c| c.addr);
    // Step 3: the DR is chosen among routers declaring themselves DR; with
    // none, the new BDR becomes DR.
    let dr = best(eligible().filter(|c| c.dr == c.addr)).map_or(bdr, |c| c.addr);
    Elected { dr, bdr }
}

/// Runs the election from the point of view of `me` (RFC 2328 9.4). When
/// the calculating router becomes or stops being DR or BDR, steps 2 and 3
/// run again with its new declaration (step 4), so it never declares itself
/// both, and an existing DR is not pre-empted.
pub fn elect(me: Candidate, neighbors: &[Candidate]) -> Elected {
    let mut all: Vec<Candidate> = Vec::with_capacity(neighbors.len() + 1);
    all.push(me);
    all.extend_from_slice(neighbors);
    let first = pass(&all);
    let was = (me.dr == me.addr, me.bdr == me.addr);
    let now = (first.dr == me.addr, first.bdr == me.addr);
    if was == now {
        return first;
    }
    all[0].dr = first.dr;
    all[0].bdr = first.bdr;
    pass(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn c(rid: &str, addr: &str, prio: u8, dr: &str, bdr: &str) -> Candidate {
        Candidate {
            router_id: ip(rid),
            addr: ip(addr),
            priority: prio,
            dr: ip(dr),
            bdr: ip(bdr),
        }
    }

    #[test]
    fn priority_zero_director_learns_existing_dr_and_bdr() {
        let me = c("10.0.0.11", "198.18.0.11", 0, "0.0.0.0", "0.0.0.0");
        let r1 = c("10.0.0.1", "198.18.0.1", 1, "198.18.0.1", "198.18.0.2");
        let r2 = c("10.0.0.2", "198.18.0.2", 1, "198.18.0.1", "198.18.0.2");
        let e = elect(me, &[r1, r2]);
        assert_eq!((e.dr, e.bdr), (ip("198.18.0.1"), ip("198.18.0.2")));
    }

    /// Every router recomputes from the others' latest declarations (as
    /// their Hellos would carry them) until nothing changes.
    fn converge(mut routers: Vec<Candidate>) -> Vec<Candidate> {
        for _ in 0..10 {
            let before = routers.clone();
            for i in 0..routers.len() {
                let others: Vec<Candidate> = routers
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| *c)
                    .collect();
                let e = elect(routers[i], &others);
                routers[i].dr = e.dr;
                routers[i].bdr = e.bdr;
            }
            if routers == before {
                return routers;
            }
        }
        panic!("election did not converge: {routers:?}");
    }

    #[test]
    fn fresh_network_converges_on_priority_then_router_id() {
        let routers = converge(vec![
            c("10.0.0.1", "198.18.0.1", 1, "0.0.0.0", "0.0.0.0"),
            c("10.0.0.2", "198.18.0.2", 1, "0.0.0.0", "0.0.0.0"),
            c("10.0.0.3", "198.18.0.3", 5, "0.0.0.0", "0.0.0.0"),
            c("10.0.0.11", "198.18.0.11", 0, "0.0.0.0", "0.0.0.0"),
        ]);
        for r in &routers {
            assert_eq!(r.dr, ip("198.18.0.3"), "{r:?}");
            assert_eq!(r.bdr, ip("198.18.0.2"), "{r:?}");
        }
    }

    #[test]
    fn single_eligible_router_elects_itself_dr_only() {
        let me = c("10.0.0.1", "198.18.0.1", 1, "0.0.0.0", "0.0.0.0");
        let e = elect(me, &[]);
        assert_eq!((e.dr, e.bdr), (ip("198.18.0.1"), NONE));
    }

    #[test]
    fn existing_dr_is_not_preempted_by_higher_priority() {
        let me = c("10.0.0.9", "198.18.0.9", 200, "198.18.0.1", "0.0.0.0");
        let dr = c("10.0.0.1", "198.18.0.1", 1, "198.18.0.1", "0.0.0.0");
        let e = elect(me, &[dr]);
        assert_eq!(e.dr, ip("198.18.0.1"), "the DR stays");
        assert_eq!(e.bdr, ip("198.18.0.9"), "the newcomer becomes BDR");
    }

    #[test]
    fn bdr_takes_over_when_dr_is_gone() {
        let me = c("10.0.0.2", "198.18.0.2", 1, "198.18.0.1", "198.18.0.2");
        let n3 = c("10.0.0.3", "198.18.0.3", 1, "198.18.0.1", "198.18.0.2");
        let e = elect(me, &[n3]);
        assert_eq!(e.dr, ip("198.18.0.2"));
        assert_eq!(e.bdr, ip("198.18.0.3"));
    }

    #[test]
    fn all_priority_zero_means_no_dr() {
        let me = c("10.0.0.11", "198.18.0.11", 0, "0.0.0.0", "0.0.0.0");
        let n = c("10.0.0.12", "198.18.0.12", 0, "0.0.0.0", "0.0.0.0");
        let e = elect(me, &[n]);
        assert_eq!((e.dr, e.bdr), (NONE, NONE));
    }
}
