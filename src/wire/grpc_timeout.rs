//! The `grpc-timeout` header, read and written exactly as the
//! [gRPC over HTTP/2 spec](https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md)
//! defines it: `TimeoutValue TimeoutUnit`, a positive integer of at most
//! eight ASCII digits followed by one of `H` (hours), `M` (minutes), `S`
//! (seconds), `m` (milliseconds), `u` (microseconds) or `n` (nanoseconds).

use std::error::Error;
use std::fmt;
use std::time::Duration;

use ::hyper::http::{HeaderName, HeaderValue};

use crate::time::FAR_FUTURE;

/// The header's name, `grpc-timeout`.
///
/// ```
/// assert_eq!(cancelkit::wire::GRPC_TIMEOUT.as_str(), "grpc-timeout");
/// ```
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// The largest `TimeoutValue` the spec allows: eight digits.
const MAX_VALUE: u64 = 99_999_999;

/// The units, finest first, with their length in nanoseconds.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// Reads a `grpc-timeout` value.
///
/// - `Ok(Some(d))`: the caller gives the work `d` from now. `0` is valid
///   and means the caller's deadline has already passed (the spec asks for
///   a positive value; a zero is read as "expired" rather than rejected,
///   so that a caller whose time ran out in transit gets
///   `DEADLINE_EXCEEDED`, not `INVALID_ARGUMENT`).
/// - `Ok(None)`: no deadline. A value of [`FAR_FUTURE`] (thirty years) or
///   more — such as `99999999H`, or Java's "infinite" `2562047H` — means
///   "never", as it does for every timer in this crate ([T3](crate#T3)).
/// - `Err(_)`: the value is malformed — empty, more than eight digits, no
///   unit, an unknown unit, or anything but ASCII digits before the unit.
///   Never panics, whatever the bytes.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancelkit::wire::parse_grpc_timeout;
///
/// assert_eq!(parse_grpc_timeout(b"200m").unwrap(), Some(Duration::from_millis(200)));
/// assert_eq!(parse_grpc_timeout(b"1H").unwrap(), Some(Duration::from_secs(3600)));
/// assert_eq!(parse_grpc_timeout(b"0n").unwrap(), Some(Duration::ZERO));
/// assert_eq!(parse_grpc_timeout(b"99999999H").unwrap(), None);
///
/// let err = parse_grpc_timeout(b"123456789S").unwrap_err();
/// assert_eq!(err.to_string(), "malformed grpc-timeout \"123456789S\": 9 digits, at most 8 allowed");
/// assert!(parse_grpc_timeout(b"").is_err());
/// assert!(parse_grpc_timeout(b"10").is_err());
/// assert!(parse_grpc_timeout(b"10s").is_err());
/// assert!(parse_grpc_timeout(b"-1S").is_err());
/// ```
pub fn parse_grpc_timeout(value: &[u8]) -> Result<Option<Duration>, GrpcTimeoutError> {
    let fail = |kind| Err(GrpcTimeoutError::new(value, kind));
    let Some((&unit, digits)) = value.split_last() else {
        return fail(Malformed::Empty);
    };
    if unit.is_ascii_digit() {
        return fail(Malformed::NoUnit);
    }
    let Some(&(_, nanos_per_unit)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return fail(Malformed::UnknownUnit(unit));
    };
    if digits.is_empty() {
        return fail(Malformed::NoValue);
    }
    if digits.len() > 8 {
        return fail(Malformed::TooLong(digits.len()));
    }
    let mut count: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return fail(Malformed::NotADigit(digit));
        }
        count = count * 10 + u64::from(digit - b'0');
    }
    // At most 99 999 999 × 3.6e12 ns ≈ 3.6e20: past u64, not past u128.
    let nanos = u128::from(count) * u128::from(nanos_per_unit);
    if nanos >= FAR_FUTURE.as_nanos() {
        return Ok(None);
    }
    // Below thirty years, so it fits: u64 nanoseconds reach 584 years.
    Ok(Some(Duration::from_nanos(nanos as u64)))
}

/// Writes `remaining` as a `grpc-timeout` value, or `None` if it is zero
/// (the spec allows only positive values: a caller with no time left should
/// not send at all).
///
/// Picks the finest unit whose value fits in eight digits and **rounds
/// down**, so the receiver's deadline is never later than the sender's
/// (it loses less than one unit: under 1 µs for anything below 100
/// seconds). Durations beyond `99999999H` are written as `99999999H`,
/// which a receiver reads as "no deadline".
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use cancelkit::wire::encode_grpc_timeout;
///
/// let header = |d| encode_grpc_timeout(d).unwrap();
/// assert_eq!(header(Duration::from_nanos(1)), "1n");
/// assert_eq!(header(Duration::from_millis(50)), "50000000n");
/// assert_eq!(header(Duration::from_millis(200)), "200000u");
/// assert_eq!(header(Duration::from_nanos(200_000_999)), "200000u"); // rounded down
/// assert_eq!(header(Duration::from_secs(3600)), "3600000m");
/// assert_eq!(encode_grpc_timeout(Duration::ZERO), None);
/// ```
pub fn encode_grpc_timeout(remaining: Duration) -> Option<HeaderValue> {
    let nanos = remaining.as_nanos();
    if nanos == 0 {
        return None;
    }
    let (unit, count) = UNITS
        .iter()
        .map(|&(unit, per)| (unit, nanos / u128::from(per)))
        .find(|&(_, count)| count <= u128::from(MAX_VALUE))
        .unwrap_or((b'H', u128::from(MAX_VALUE)));
    let mut text = count.to_string();
    text.push(char::from(unit));
    Some(HeaderValue::from_str(&text).expect("ASCII digits and a unit letter are a valid header"))
}

/// A malformed `grpc-timeout` value: what [`parse_grpc_timeout`] returns,
/// and what [`TokenService`](super::TokenService) answers with
/// `INVALID_ARGUMENT`.
///
/// Its message quotes the value (non-printable bytes escaped) and says
/// what is wrong with it.
///
/// ```
/// let err = cancelkit::wire::parse_grpc_timeout(b"5x").unwrap_err();
/// assert_eq!(err.to_string(), "malformed grpc-timeout \"5x\": unknown unit 'x' (expected one of H M S m u n)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTimeoutError {
    value: String,
    kind: Malformed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    Empty,
    NoUnit,
    NoValue,
    UnknownUnit(u8),
    TooLong(usize),
    NotADigit(u8),
    Repeated,
}

impl GrpcTimeoutError {
    /// A request with more than one `grpc-timeout` header.
    pub(super) fn repeated() -> Self {
        GrpcTimeoutError {
            value: String::new(),
            kind: Malformed::Repeated,
        }
    }

    fn new(value: &[u8], kind: Malformed) -> Self {
        // Long values are cut: the message is for a log line.
        let shown = &value[..value.len().min(32)];
        let mut text: String = shown.escape_ascii().to_string();
        if shown.len() < value.len() {
            text.push_str("...");
        }
        GrpcTimeoutError { value: text, kind }
    }
}

impl fmt::Display for GrpcTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == Malformed::Repeated {
            return f.write_str("malformed grpc-timeout: the header appears more than once");
        }
        write!(f, "malformed grpc-timeout \"{}\": ", self.value)?;
        match self.kind {
            Malformed::Empty => f.write_str("empty value"),
            Malformed::NoUnit => f.write_str("no unit (expected one of H M S m u n)"),
            Malformed::NoValue => f.write_str("a unit without digits"),
            Malformed::UnknownUnit(unit) => write!(
                f,
                "unknown unit '{}' (expected one of H M S m u n)",
                unit.escape_ascii()
            ),
            Malformed::TooLong(digits) => write!(f, "{digits} digits, at most 8 allowed"),
            Malformed::NotADigit(byte) => {
                write!(f, "'{}' is not an ASCII digit", byte.escape_ascii())
            }
            Malformed::Repeated => Ok(()),
        }
    }
}

impl Error for GrpcTimeoutError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_reads_as_its_length() {
        for (text, want) in [
            ("3H", Duration::from_secs(3 * 3600)),
            ("3M", Duration::from_secs(180)),
            ("3S", Duration::from_secs(3)),
            ("3m", Duration::from_millis(3)),
            ("3u", Duration::from_micros(3)),
            ("3n", Duration::from_nanos(3)),
            ("00000007S", Duration::from_secs(7)),
            ("99999999n", Duration::from_nanos(99_999_999)),
        ] {
            assert_eq!(parse_grpc_timeout(text.as_bytes()), Ok(Some(want)), "{text}");
        }
    }

    #[test]
    fn malformed_values_say_what_is_wrong() {
        for (text, why) in [
            ("", "empty value"),
            ("100", "no unit"),
            ("S", "a unit without digits"),
            ("100s", "unknown unit 's'"),
            ("123456789n", "9 digits, at most 8"),
            ("1 S", "' ' is not an ASCII digit"),
            ("+1S", "'+' is not an ASCII digit"),
            ("1.5S", "'.' is not an ASCII digit"),
            ("\u{e9}S", "'\\xc3' is not an ASCII digit"),
        ] {
            let err = parse_grpc_timeout(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn thirty_years_and_more_mean_no_deadline() {
        let just_below = FAR_FUTURE.as_secs() / 3600 - 1;
        assert_eq!(
            parse_grpc_timeout(format!("{just_below}H").as_bytes()),
            Ok(Some(Duration::from_secs(just_below * 3600)))
        );
        let at = FAR_FUTURE.as_secs() / 3600;
        assert_eq!(parse_grpc_timeout(format!("{at}H").as_bytes()), Ok(None));
        assert_eq!(parse_grpc_timeout(b"2562047H"), Ok(None));
    }

    #[test]
    fn encoding_picks_the_finest_unit_that_fits_and_rounds_down() {
        for (d, want) in [
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_nanos(100_000_000), "100000u"),
            (Duration::from_nanos(100_000_999), "100000u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(100_000_000), "1666666M"),
            (Duration::from_secs(6_000_000_000), "1666666H"),
        ] {
            assert_eq!(encode_grpc_timeout(d).unwrap(), want, "{d:?}");
        }
        assert_eq!(encode_grpc_timeout(Duration::MAX).unwrap(), "99999999H");
    }

    #[test]
    fn encoding_round_trips_within_one_unit_and_never_later() {
        let mut d = Duration::from_nanos(1);
        while d < Duration::from_secs(86_400 * 365) {
            let header = encode_grpc_timeout(d).unwrap();
            let back = parse_grpc_timeout(header.as_bytes()).unwrap().unwrap();
            assert!(back <= d, "{d:?} came back later: {back:?}");
            assert!(back > Duration::ZERO, "{d:?} became zero");
            // One unit at most, and a unit is chosen only once the count
            // in the finer one passed eight digits: under 1/100 000 of `d`.
            assert!(d - back <= d / 100_000, "{d:?} → {back:?}");
            d = d * 3 + Duration::from_nanos(7);
        }
    }
}
