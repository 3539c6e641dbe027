//! Any bytes into authentication checks of every kind. Each config keeps
//! one neighbour's state across all inputs of a run (as a neighbour's state
//! lives across its packets), and a fresh state checks each input too.
//! No panic; the accepted sequence number never goes back; an accepted
//! cryptographic packet replayed is refused under strict sequencing and
//! taken otherwise; the same packet re-signed with a lower sequence number
//! is refused, with a higher one taken.
#![no_main]
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use ospf::auth::{sign, verify, Algorithm, AuthConfig, AuthError, Key, NeighborAuthState};

const NOW: u64 = 1_800_000_000;

/// The keys of the golden captures (ospf/tests/data) and one of each other
/// algorithm.
fn keys() -> Vec<Key> {
    vec![
        Key::new(7, Algorithm::KeyedMd5, "lab-md5-key"),
        Key::new(3, Algorithm::HmacSha256, "lab-hmac-sha256-key"),
        Key::new(1, Algorithm::HmacSha1, "k"),
        Key::new(2, Algorithm::HmacSha384, "k"),
        Key::new(4, Algorithm::HmacSha512, "k"),
    ]
}

fn configs() -> Vec<(AuthConfig, bool)> {
    vec![
        (AuthConfig::Null, false),
        (AuthConfig::simple("labpass").expect("password"), false),
        (AuthConfig::cryptographic(keys(), true).expect("keys"), true),
        (
            AuthConfig::cryptographic(keys(), false).expect("keys"),
            false,
        ),
    ]
}

/// Per config, one neighbour's state for the whole run.
static NEIGHBOURS: Mutex<Vec<NeighborAuthState>> = Mutex::new(Vec::new());

fn check(config: &AuthConfig, strict: bool, data: &[u8], state: &mut NeighborAuthState) {
    let before = state.last_seq();
    let r = verify(config, data, state, NOW);
    assert!(state.last_seq() >= before, "sequence number went back");
    let Ok(v) = r else {
        assert_eq!(state.last_seq(), before, "a refused packet moved the state");
        return;
    };
    let (Some(seq), Some(id)) = (v.seq, v.key_id) else {
        return;
    };
    assert_eq!(state.last_seq(), Some(seq));
    match verify(config, data, state, NOW) {
        Err(AuthError::SequenceReplayed(s)) if strict => assert_eq!(s, seq),
        Ok(_) if !strict => {}
        other => panic!("replay of seq {seq} (strict {strict}): {other:?}"),
    }
    let key = keys()
        .into_iter()
        .find(|k| k.id == id)
        .expect("accepted key");
    let single = AuthConfig::cryptographic(vec![key], strict).expect("key");
    let packet = &data[..v.packet_len];
    if seq > 0 {
        let mut older = packet.to_vec();
        sign(&single, &mut older, seq - 1, NOW).expect("re-sign");
        match verify(config, &older, state, NOW) {
            Err(AuthError::SequenceRegressed { last, got }) => {
                assert_eq!((last, got), (seq, seq - 1));
            }
            other => panic!("seq {} after {seq}: {other:?}", seq - 1),
        }
    }
    if seq < u32::MAX {
        let mut newer = packet.to_vec();
        sign(&single, &mut newer, seq + 1, NOW).expect("re-sign");
        let ok = verify(config, &newer, state, NOW).expect("a newer sequence number");
        assert_eq!((ok.seq, state.last_seq()), (Some(seq + 1), Some(seq + 1)));
    }
}

fuzz_target!(|data: &[u8]| {
    let configs = configs();
    let mut neighbours = NEIGHBOURS.lock().unwrap_or_else(|e| e.into_inner());
    neighbours.resize_with(configs.len(), NeighborAuthState::new);
    for ((config, strict), state) in configs.iter().zip(neighbours.iter_mut()) {
        check(config, *strict, data, state);
        check(config, *strict, data, &mut NeighborAuthState::new());
    }
});
