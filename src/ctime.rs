//! Local time as the C library tells it: `localtime(3)`, `mktime(3)` and
//! `strftime(3)`, which the original uses for the names of snapshot
//! softlinks (a format the user may give), the times `snapls` prints
//! (cli.md §13) and cleanup's periods, as the retention grid does for its
//! hours, days and months (cli.md §23). A format given on the command line
//! has to mean what it means to the C library, `%Z` and the locale
//! included, so this calls the C library rather than imitate it.

// The one other place with `unsafe` besides the kernel backend and
// events.rs (src/lib.rs): two calls into the C library, on buffers owned
// here.
#![allow(unsafe_code)]

use std::ffi::CString;

extern "C" {
    /// POSIX `tzset(3)`, which the libc crate does not declare.
    fn tzset();
}

/// `strftime(3)` of `fmt` with the local time of `secs` (seconds since the
/// epoch) into a buffer of `max` bytes. `None` when the result does not
/// fit, is empty (strftime tells the two apart no better), when `fmt`
/// holds a NUL or when the time has no local time.
pub(crate) fn strftime_local(fmt: &[u8], secs: i64, max: usize) -> Option<Vec<u8>> {
    let fmt = CString::new(fmt).ok()?;
    let tm = local_tm(secs)?;
    let mut buf = vec![0u8; max];
    // SAFETY: strftime writes at most `buf.len()` bytes into `buf`, reads
    // the NUL-terminated `fmt` and `tm`, all of which outlive the call.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm) };
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    Some(buf)
}

/// `localtime_r(3)` of `secs`, after `tzset(3)`.
fn local_tm(secs: i64) -> Option<libc::tm> {
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: `tm` is plain data; all zeros (a null tm_zone included) is a
    // valid value, which localtime_r overwrites.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: tzset reads TZ and sets the C library's zone; localtime_r
    // writes only into `tm`, which lives across the call.
    let got = unsafe {
        tzset();
        libc::localtime_r(&t, &mut tm)
    };
    (!got.is_null()).then_some(tm)
}

/// The seconds since the epoch of a local calendar time, as `mktime(3)`
/// reads it with `tm_isdst = -1`: the zone decides whether daylight
/// saving applies, and a time in a daylight-saving gap is moved on by the
/// gap. `None` when the C library cannot represent it.
pub(crate) fn mktime_local(year: i32, month: u32, day: u32, hms: (u32, u32, u32)) -> Option<i64> {
    let (hour, min, sec) = hms;
    // SAFETY: `tm` is plain data; all zeros (a null tm_zone included) is a
    // valid value, whose fields are set below.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year.checked_sub(1900)?;
    tm.tm_mon = i32::try_from(month).ok()?.checked_sub(1)?;
    tm.tm_mday = i32::try_from(day).ok()?;
    tm.tm_hour = i32::try_from(hour).ok()?;
    tm.tm_min = i32::try_from(min).ok()?;
    tm.tm_sec = i32::try_from(sec).ok()?;
    tm.tm_isdst = -1;
    // SAFETY: tzset reads TZ and sets the C library's zone; mktime reads
    // and normalises only `tm`, which lives across the call.
    let t = unsafe {
        tzset();
        libc::mktime(&mut tm)
    };
    // -1 is also 1969-12-31 23:59:59 UTC, never a date asked for here.
    (t != -1).then_some(t)
}

/// A local calendar time broken down as `localtime(3)` gives it (the
/// fields cleanup's period and the retention grid count by).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalTm {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// Days since Sunday, 0 to 6.
    pub wday: u32,
    /// Days since January 1, 0 to 365.
    pub yday: u32,
}

/// `localtime_r(3)` of `secs`; `None` when the C library has no local time
/// for it.
pub(crate) fn localtime(secs: i64) -> Option<LocalTm> {
    let tm = local_tm(secs)?;
    let u = |v: libc::c_int| u32::try_from(v).ok();
    Some(LocalTm {
        year: tm.tm_year.checked_add(1900)?,
        month: u(tm.tm_mon)? + 1,
        day: u(tm.tm_mday)?,
        hour: u(tm.tm_hour)?,
        min: u(tm.tm_min)?,
        sec: u(tm.tm_sec)?,
        wday: u(tm.tm_wday)?,
        yday: u(tm.tm_yday)?,
    })
}

/// The seconds since the epoch now (0 before it, as no clock says).
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same TZ for every test of this binary: the process's zone is
    /// the C library's, shared by the threads.
    fn utc() {
        std::env::set_var("TZ", "UTC");
    }

    #[test]
    fn formats_as_the_c_library() {
        utc();
        assert_eq!(
            strftime_local(b"%Y-%m-%d %H:%M:%S %Z", 951_782_400, 64).unwrap(),
            b"2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            strftime_local(b"snap-%Y%m%d-%H%M", 1_795_886_222, 64).unwrap(),
            b"snap-20261128-1717"
        );
        // Too small a buffer, an empty result, a NUL: no name.
        assert_eq!(strftime_local(b"%Y-%m-%d", 0, 5), None);
        assert_eq!(strftime_local(b"", 0, 64), None);
        assert_eq!(strftime_local(b"a\0b", 0, 64), None);
        assert!(now_secs() > 1_600_000_000);
    }
}
