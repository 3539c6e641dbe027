//! Any bytes as a line on the control socket: the daemon's request parser
//! (`serde_json::from_str::<Request>`, as in daemon::control) never panics
//! and a request it takes serialises to a line it takes again as the same
//! request; any bytes as a streamed reply to the client's reader never
//! panic, and a row count it returns is the number of rows it handed out.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The control protocol of src/protocol.rs, compiled in by path: it needs
// serde, serde_json, anyhow and the ospf codec's types (see Cargo.toml).
#[allow(dead_code)]
#[path = "../../src/protocol.rs"]
mod protocol;

use protocol::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(req) = serde_json::from_str::<Request>(line) {
        let text = serde_json::to_string(&req).expect("a request serialises");
        assert!(!text.contains('\n'), "one request is one line");
        let again: Request = serde_json::from_str(&text).expect("re-read request");
        assert_eq!(format!("{again:?}"), format!("{req:?}"));
    }
    let mut rows = 0u64;
    if let Ok(n) = protocol::read_stream(data, &mut |_| {
        rows += 1;
        Ok(())
    }) {
        assert_eq!(n, rows);
    }
});
