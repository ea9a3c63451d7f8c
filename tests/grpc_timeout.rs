//! Property tests of the `grpc-timeout` header ([W1], [W2]): whatever the
//! bytes, reading one never panics and accepts exactly what the gRPC spec
//! allows, and `TokenService` answers 400 exactly when the header is
//! malformed; writing one reads back as at most what was written.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cancelkit::sim::Sim;
use cancelkit::time::FAR_FUTURE;
use cancelkit::token::CancelKind;
use cancelkit::wire::{TokenService, encode_grpc_timeout, parse_grpc_timeout};
use cancelkit::{CancelToken, Timer};
use hyper::header::HeaderValue;
use hyper::service::{Service, service_fn};
use hyper::{Request, Response, StatusCode};
use proptest::prelude::*;

/// The spec's grammar, written independently of the parser: one to eight
/// ASCII digits, then one of `H M S m u n`.
fn well_formed(bytes: &[u8]) -> bool {
    match bytes.split_last() {
        Some((unit, digits)) => {
            b"HMSmun".contains(unit)
                && (1..=8).contains(&digits.len())
                && digits.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// The value a well-formed header stands for, computed the long way.
fn meaning(bytes: &[u8]) -> Duration {
    let (unit, digits) = bytes.split_last().unwrap();
    let count: u64 = std::str::from_utf8(digits).unwrap().parse().unwrap();
    match unit {
        b'H' => Duration::from_secs(count * 3600),
        b'M' => Duration::from_secs(count * 60),
        b'S' => Duration::from_secs(count),
        b'm' => Duration::from_millis(count),
        b'u' => Duration::from_micros(count),
        b'n' => Duration::from_nanos(count),
        _ => unreachable!(),
    }
}

/// Random bytes, and strings near the grammar (so that well-formed values
/// and their near misses are both common).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..14),
        "[0-9]{0,10}[HMSmunhs x\\-]?".prop_map(String::into_bytes),
        "[+\\- ]?[0-9]{1,9}[HMSmun]".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn reading_accepts_exactly_the_spec_and_never_panics(bytes in header_bytes()) {
        match parse_grpc_timeout(&bytes) {
            Ok(read) => {
                prop_assert!(well_formed(&bytes), "accepted {:?}", bytes);
                let meant = meaning(&bytes);
                let want = if meant >= FAR_FUTURE { None } else { Some(meant) };
                prop_assert_eq!(read, want);
            }
            Err(err) => {
                prop_assert!(!well_formed(&bytes), "rejected {:?}: {}", bytes, err);
                prop_assert!(err.to_string().starts_with("malformed grpc-timeout"));
            }
        }
    }

    #[test]
    fn writing_reads_back_no_later_and_never_zero(secs in 0u64..=1 << 40, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        match encode_grpc_timeout(d) {
            None => prop_assert_eq!(d, Duration::ZERO),
            Some(value) => {
                prop_assert!(well_formed(value.as_bytes()), "{:?}", value);
                match parse_grpc_timeout(value.as_bytes()).unwrap() {
                    Some(back) => {
                        prop_assert!(back <= d && back > Duration::ZERO, "{:?} → {:?}", d, back);
                        prop_assert!(d - back <= d / 100_000, "{:?} → {:?}", d, back);
                    }
                    None => prop_assert!(d >= FAR_FUTURE),
                }
            }
        }
    }

    #[test]
    fn token_service_answers_400_exactly_when_the_header_is_malformed(bytes in header_bytes()) {
        // Only what can be a header value at all reaches a service.
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let sim = Sim::new();
        let seen = Arc::new(Mutex::new(None));
        let service = TokenService::new(sim.clone(), CancelToken::new(), service_fn({
            let seen = seen.clone();
            move |req: Request<String>| {
                let token = req.extensions().get::<CancelToken>().unwrap();
                *seen.lock().unwrap() = Some((token.deadline(), token.reason().map(|w| w.kind())));
                async { Ok::<_, Infallible>(Response::new(String::new())) }
            }
        }));
        let mut req = Request::new(String::new());
        req.headers_mut().insert("grpc-timeout", value);
        let response = futures_lite::future::block_on(service.call(req)).unwrap();
        let seen = seen.lock().unwrap().take();
        if well_formed(&bytes) {
            prop_assert_eq!(response.status(), StatusCode::OK);
            let (deadline, cancelled) = seen.unwrap();
            let meant = meaning(&bytes);
            if meant == Duration::ZERO {
                prop_assert_eq!(cancelled, Some(CancelKind::DeadlineExceeded));
            } else if meant >= FAR_FUTURE {
                prop_assert_eq!(deadline, None);
            } else {
                prop_assert_eq!(deadline, Some(sim.now() + meant));
                prop_assert_eq!(cancelled, None);
            }
        } else {
            prop_assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            prop_assert_eq!(response.headers()["grpc-status"].as_bytes(), b"3");
            prop_assert!(seen.is_none(), "the handler ran for {:?}", bytes);
        }
    }
}
