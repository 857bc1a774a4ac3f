//! Arbitrary bytes into the packet parser and the server.
//!
//! Properties: nothing panics; an accepted packet serialises back to the
//! exact 48 bytes it came from and re-parses to the same packet; the
//! server's answer, when there is one, is itself a valid server-mode packet
//! whose origin timestamp is the request's transmit timestamp.

#![no_main]

use intercloud_ntp::packet::{self, HEADER_LEN, Mode};
use intercloud_ntp::ratelimit::Verdict;
use intercloud_ntp::server::{DEFAULT_LOCAL_STRATUM, Response, ServerState};
use intercloud_ntp::timestamp::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = packet::parse(data);
    if let Ok(p) = &parsed {
        let bytes = packet::serialize(p);
        assert_eq!(bytes[..], data[..HEADER_LEN]);
        assert_eq!(packet::parse(&bytes).as_ref(), Ok(p));
    }

    let receive = Timestamp::from_parts(0xea2a_5f80, 0x1000_0000);
    let transmit = Timestamp::from_parts(0xea2a_5f80, 0x2000_0000);
    let Ok(state) = ServerState::local_clock(DEFAULT_LOCAL_STRATUM, -20, receive) else {
        return;
    };
    // The first byte past the header, if any, picks the rate-limit verdict.
    let verdict = match data.get(HEADER_LEN).map(|b| b % 3) {
        Some(1) => Verdict::KissOfDeath,
        Some(2) => Verdict::Drop,
        _ => Verdict::Allow,
    };
    match state.respond(data, receive, || verdict, || transmit) {
        Response::Reply(bytes) | Response::KissOfDeath(bytes) => {
            let request = parsed.expect("only a parsed request is answered");
            let reply = packet::parse(&bytes).expect("our answers parse");
            assert_eq!(reply.mode, Mode::Server);
            assert_eq!(reply.version, request.version);
            assert_eq!(reply.origin_time, request.transmit_time);
            assert!(!reply.origin_time.is_zero());
        }
        Response::Drop(_) => {}
    }
});
