//! C-compatible parsing of argument words as hammer(8)'s C code reads
//! them: `strtol(3)`/`strtoull(3)`, `sscanf`'s `%jx` and `%d`, the size
//! suffixes of `-b`/`-S` and `-C`, prune-min times, `dirname(3)` and
//! `basename(3)`; all on bytes, since an argument need not be UTF-8.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What `isspace(3)` skips before a number.
const BLANKS: &[u8] = b" \t\n\r\x0b\x0c";

/// A number as C's `strto*` functions read it, for callers that check
/// it rather than take whatever it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CNumber<'a> {
    pub negative: bool,
    /// `None` when it overflows 64 bits.
    pub magnitude: Option<u64>,
    /// What follows the digits.
    pub rest: &'a [u8],
}

/// Reads a number as `strto*(s, &end, base)` does: blanks, a sign, for
/// base 0 a `0x` (hex) or `0` (octal) prefix, for base 16 an optional
/// `0x`, then digits; `None` without a digit.
pub fn scan_number(s: &[u8], base: u32) -> Option<CNumber<'_>> {
    let start = s
        .iter()
        .position(|c| !BLANKS.contains(c))
        .unwrap_or(s.len());
    let t = &s[start..];
    let (negative, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // `0x` is a prefix only when a hex digit follows (C semantics).
    let hex_prefix =
        t.len() > 2 && t[0] == b'0' && (t[1] | 0x20) == b'x' && t[2].is_ascii_hexdigit();
    let (base, t) = match base {
        0 if hex_prefix => (16, &t[2..]),
        0 if t.first() == Some(&b'0') => (8, t),
        0 => (10, t),
        16 if hex_prefix => (16, &t[2..]),
        b => (b, t),
    };
    let n = t
        .iter()
        .take_while(|&&c| char::from(c).is_digit(base))
        .count();
    if n == 0 {
        return None;
    }
    let magnitude = t[..n].iter().try_fold(0u64, |v, &c| {
        let d = char::from(c).to_digit(base).unwrap_or(0);
        v.checked_mul(u64::from(base))?.checked_add(u64::from(d))
    });
    Some(CNumber {
        negative,
        magnitude,
        rest: &t[n..],
    })
}

/// C `strtoull(s, &end, base)`; base 0 reads `0x` hex, a leading `0` as
/// octal, else decimal. Returns the value (negated modulo 2^64 for `-`,
/// saturated on overflow) and the unparsed rest, all of `s` when there is
/// no digit.
pub fn strtoull(s: &[u8], base: u32) -> (u64, &[u8]) {
    match scan_number(s, base) {
        Some(n) => {
            let m = n.magnitude.unwrap_or(u64::MAX);
            (if n.negative { m.wrapping_neg() } else { m }, n.rest)
        }
        None => (0, s),
    }
}

/// C `strtol(s, &end, base)` on LP64: like `strtoull` but saturating at
/// the `i64` range.
pub fn strtol(s: &[u8], base: u32) -> (i64, &[u8]) {
    let Some(n) = scan_number(s, base) else {
        return (0, s);
    };
    let m = n.magnitude.unwrap_or(u64::MAX);
    let v = match n.negative {
        true if m > i64::MIN.unsigned_abs() => i64::MIN,
        true => 0i64.wrapping_sub_unsigned(m),
        false => i64::try_from(m).unwrap_or(i64::MAX),
    };
    (v, n.rest)
}

/// `sscanf`'s `%jx`: blanks, a sign, an optional `0x` and at least one hex
/// digit; returns what follows.
pub fn scan_hex(s: &[u8]) -> Option<&[u8]> {
    scan_number(s, 16).map(|n| n.rest)
}

/// `sscanf`'s `%d`: blanks, a sign and at least one decimal digit.
pub fn scan_decimal(s: &[u8]) -> Option<i64> {
    scan_number(s, 10).map(|_| strtol(s, 10).0)
}

/// `-b` / `-S`: the multiple the one character after the number stands
/// for (`k`, `m`, `g`, either case; none: 1); characters after it are
/// ignored, any other is an error (cli.md §1).
pub fn size_suffix(rest: &[u8]) -> Option<u64> {
    match rest.first() {
        None => Some(1),
        Some(b'g' | b'G') => Some(1 << 30),
        Some(b'm' | b'M') => Some(1 << 20),
        Some(b'k' | b'K') => Some(1 << 10),
        Some(_) => None,
    }
}

/// `-C cachesize[:readahead]` (hammer's cache.c): `k`/`m` suffix, at least
/// 1 MiB; returns (cache bytes, read-ahead blocks).
pub fn parse_cache_size(s: &[u8]) -> Option<(i64, i64)> {
    const BLKSIZE: i64 = 16384;
    let (v, mut rest) = strtol(s, 0);
    let mut size = i64::from(v as i32);
    match rest.first() {
        Some(b'm' | b'M') => {
            size *= 1024 * 1024;
            rest = &rest[1..];
        }
        Some(b'k' | b'K') => {
            size *= 1024;
            rest = &rest[1..];
        }
        None | Some(b':') => {}
        Some(_) => return None,
    }
    let mut readahead = 0i64;
    if let Some(r) = rest.strip_prefix(b":") {
        readahead = i64::from(strtol(r, 0).0 as i32);
    }
    size = size.max(1024 * 1024);
    if readahead < 0 {
        return None;
    }
    if readahead * BLKSIZE / size >= 16 {
        readahead = size / 16 / BLKSIZE;
    }
    Some((size, readahead))
}

/// prune-min's `[Nd[/]]hh[:mm[:ss]]` to seconds, clamped to 0x7FFFFFFF;
/// computed in 64 bits (D17 fixed: the original overflows a 32-bit int).
pub fn time_to_secs(s: &[u8]) -> Option<i32> {
    let (mut n, mut rest) = strtol(s, 10);
    let mut days = 0;
    if let Some(r) = rest.strip_prefix(b"d") {
        days = n;
        (n, rest) = match r.strip_prefix(b"/") {
            Some(r) => strtol(r, 10),
            None => (0, r),
        };
    }
    let hours = n;
    let (mut mins, mut secs) = (0, 0);
    if let Some(r) = rest.strip_prefix(b":") {
        (mins, rest) = strtol(r, 10);
        if let Some(r) = rest.strip_prefix(b":") {
            (secs, rest) = strtol(r, 10);
        }
    }
    if days < 0 || hours < 0 || mins < 0 || secs < 0 || !rest.is_empty() {
        return None;
    }
    let total = days
        .saturating_mul(86400)
        .saturating_add(hours.saturating_mul(3600))
        .saturating_add(mins.saturating_mul(60))
        .saturating_add(secs);
    Some(total.min(0x7FFF_FFFF) as i32)
}

fn path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

fn strip_slashes(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c != b'/') {
        Some(i) => &p[..=i],
        None if p.is_empty() => p,
        None => b"/",
    }
}

/// `p` without trailing slashes (`/` stays `/`).
pub fn strip_trailing_slashes(p: &Path) -> &Path {
    path(strip_slashes(p.as_os_str().as_bytes()))
}

/// basename(3): the last component, trailing slashes ignored.
pub fn basename(p: &Path) -> &OsStr {
    let t = strip_slashes(p.as_os_str().as_bytes());
    if t == b"/" {
        return OsStr::from_bytes(t);
    }
    let start = t.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1);
    OsStr::from_bytes(&t[start..])
}

/// dirname(3): everything before the last component.
pub fn dirname(p: &Path) -> &Path {
    let t = strip_slashes(p.as_os_str().as_bytes());
    match t.iter().rposition(|&c| c == b'/') {
        None => path(b"."),
        Some(i) => match strip_slashes(&t[..i]) {
            b"" => path(b"/"),
            d => path(d),
        },
    }
}

/// The snapshot commands' `dirpart()`: what precedes the last `/` and the
/// slashes before it, `.` when that is nothing. Unlike dirname(3) it keeps
/// no trailing-slash rule (`a/` gives `a`) and gives `.` for `/x`, as the
/// original's does (cli.md §13).
pub fn dirpart(p: &Path) -> &Path {
    let b = p.as_os_str().as_bytes();
    let Some(mut end) = b.iter().rposition(|&c| c == b'/') else {
        return path(b".");
    };
    while end > 0 && b[end - 1] == b'/' {
        end -= 1;
    }
    if end == 0 {
        return path(b".");
    }
    path(&b[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirpart_as_the_snapshot_commands_cut() {
        for (p, want) in [
            ("a", "."),
            ("/a", "."),
            ("/a/b", "/a"),
            ("a//b", "a"),
            ("a/", "a"),
            ("/usr/obj/@@0x10", "/usr/obj"),
            ("x/y/", "x/y"),
        ] {
            assert_eq!(dirpart(Path::new(p)), Path::new(want), "{p}");
        }
    }

    #[test]
    fn strtol_like_c() {
        assert_eq!(strtol(b"  -0x1f rest", 0), (-31, &b" rest"[..]));
        assert_eq!(strtol(b"08", 0), (0, &b"8"[..]));
        assert_eq!(strtol(b"zz", 0), (0, &b"zz"[..]));
        assert_eq!(strtol(b"99999999999999999999", 0), (i64::MAX, &b""[..]));
        assert_eq!(strtol(b"-99999999999999999999", 10).0, i64::MIN);
        assert_eq!(strtol(b"-9223372036854775808", 10).0, i64::MIN);
        assert_eq!(strtol(b"+12:30", 10), (12, &b":30"[..]));
        assert_eq!(strtoull(b"-1", 0).0, u64::MAX);
        assert_eq!(strtoull(b"0x", 0), (0, &b"x"[..]));
        assert_eq!(strtoull(b"0x00000001061a8ba0", 16).0, 0x1061a8ba0);
        assert_eq!(strtoull(b"1061a8ba0zz", 16), (0x1061a8ba0, &b"zz"[..]));
        assert_eq!(strtoull(b"zz", 16), (0, &b"zz"[..]));
        assert_eq!(strtoull(b"010", 10).0, 10);
    }

    #[test]
    fn numbers_for_checking() {
        let n = scan_number(b" -0x1fk", 0).unwrap();
        assert_eq!(
            (n.negative, n.magnitude, n.rest),
            (true, Some(31), &b"k"[..])
        );
        assert_eq!(
            scan_number(b"99999999999999999999", 0).unwrap().magnitude,
            None
        );
        assert_eq!(scan_number(b"", 0), None);
        assert_eq!(scan_number(b"-", 0), None);
    }

    #[test]
    fn scanf_conversions() {
        assert_eq!(scan_hex(b"-1:00003"), Some(&b":00003"[..]));
        assert_eq!(scan_hex(b"0x00000001061a8ba0:1"), Some(&b":1"[..]));
        assert_eq!(scan_hex(b":1"), None);
        assert_eq!(scan_decimal(b"00003"), Some(3));
        assert_eq!(scan_decimal(b" -7x"), Some(-7));
        assert_eq!(scan_decimal(b"x"), None);
    }

    #[test]
    fn cache_size() {
        assert_eq!(parse_cache_size(b"64m"), Some((64 << 20, 0)));
        assert_eq!(parse_cache_size(b"10k"), Some((1 << 20, 0)));
        assert_eq!(parse_cache_size(b"64m:1000"), Some((64 << 20, 1000)));
        assert_eq!(parse_cache_size(b"64m:100000"), Some((64 << 20, 256)));
        assert_eq!(parse_cache_size(b"5x"), None);
        assert_eq!(parse_cache_size(b"1m:-1"), None);
    }

    #[test]
    fn time_specs_from_the_spec() {
        assert_eq!(time_to_secs(b"30d"), Some(2_592_000));
        assert_eq!(time_to_secs(b"1d/02:03:04"), Some(93_784));
        assert_eq!(time_to_secs(b"12"), Some(43_200));
        assert_eq!(time_to_secs(b"01:30"), Some(5_400));
        assert_eq!(time_to_secs(b""), Some(0));
        assert_eq!(time_to_secs(b"5x"), None);
        assert_eq!(time_to_secs(b"-1"), None);
        assert_eq!(time_to_secs(b"1:-1"), None);
    }

    #[test]
    fn d17_large_day_counts_clamp_instead_of_overflowing() {
        assert_eq!(time_to_secs(b"30000d"), Some(0x7FFF_FFFF));
        assert_eq!(time_to_secs(b"99999999999999999999d"), Some(0x7FFF_FFFF));
    }

    #[test]
    fn dirname_and_basename() {
        let d = |p: &str| dirname(Path::new(p)).to_str().unwrap().to_string();
        let b = |p: &str| basename(Path::new(p)).to_str().unwrap().to_string();
        assert_eq!(d("/fs/pfs/backup"), "/fs/pfs");
        assert_eq!(d("/fs/pfs/backup/"), "/fs/pfs");
        assert_eq!(d("/fs//backup"), "/fs");
        assert_eq!(d("backup"), ".");
        assert_eq!(d("/backup"), "/");
        assert_eq!(d("//backup"), "/");
        assert_eq!(b("/fs/pfs/backup//"), "backup");
        assert_eq!(b("../pfs/@@-1:00003"), "@@-1:00003");
        assert_eq!(b("/"), "/");
        let s = |p: &str| {
            strip_trailing_slashes(Path::new(p))
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(s("a//"), "a");
        assert_eq!(s("///"), "/");
        assert_eq!(s(""), "");
    }

    #[test]
    fn paths_are_bytes() {
        let p = Path::new(OsStr::from_bytes(b"/st/p\xff/x\xfe"));
        assert_eq!(dirname(p).as_os_str().as_bytes(), b"/st/p\xff");
        assert_eq!(basename(p).as_bytes(), b"x\xfe");
    }
}
