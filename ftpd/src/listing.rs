//! Directory listings: `ls -l` lines (LIST), bare names (NLST), RFC 3659 facts (MLSD/MLST),
//! and the UTC calendar dates they need (no clock here: `now` comes in).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use filegate_core::{Entry, Permissions};

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Utc {
    pub fn from_system(t: SystemTime) -> Utc {
        let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
            Err(e) => {
                // Before 1970: count back, keeping milliseconds non-negative.
                let d = e.duration();
                let mut s = -(d.as_secs() as i64);
                let mut ms = d.subsec_millis();
                if ms > 0 {
                    s -= 1;
                    ms = 1000 - ms;
                }
                (s, ms)
            }
        };
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            millis,
        }
    }

    /// YYYYMMDDHHMMSS, the form of MDTM and the MLST `modify` fact (RFC 3659 section 2.3).
    pub fn timeval(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), counting in 400-year
/// eras that start on March 1st so the leap day falls at the end of each year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    const DAYS_PER_ERA: i64 = 146_097;
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// About six months: older (or future) dates show the year instead of the time, as `ls` does.
const RECENT: Duration = Duration::from_secs(182 * 86_400);

/// One `ls -l` line, without the line end, as lftp, curl and FileZilla parse it.
pub fn list_line(e: &Entry, now: SystemTime) -> String {
    let mode = if e.is_dir() {
        "drwxr-xr-x"
    } else {
        "-rw-r--r--"
    };
    let t = Utc::from_system(e.modified);
    let month = MONTHS
        .get(t.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    let recent = match now.duration_since(e.modified) {
        Ok(age) => age < RECENT,
        Err(ahead) => ahead.duration() < Duration::from_secs(3600),
    };
    let mut s = String::with_capacity(64 + e.name.len());
    let _ = write!(s, "{mode} 1 ftp ftp {:>13} {month} {:>2} ", e.size, t.day);
    if recent {
        let _ = write!(s, "{:02}:{:02}", t.hour, t.minute);
    } else {
        let _ = write!(s, " {:04}", t.year.clamp(0, 9999));
    }
    s.push(' ');
    s.push_str(&e.name);
    s
}

/// The MLST facts this server knows, selectable with OPTS MLST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts(u8);

impl Facts {
    const TYPE: u8 = 1;
    const SIZE: u8 = 2;
    const MODIFY: u8 = 4;
    const PERM: u8 = 8;
    const UNIQUE: u8 = 16;
    const NAMES: [(&'static str, u8); 5] = [
        ("type", Self::TYPE),
        ("size", Self::SIZE),
        ("modify", Self::MODIFY),
        ("perm", Self::PERM),
        ("unique", Self::UNIQUE),
    ];

    pub fn all() -> Facts {
        Facts(0x1f)
    }

    /// Parses OPTS MLST's "fact;fact;" (unknown facts are ignored, RFC 3659 section 7.9).
    pub fn parse(list: &str) -> Facts {
        let mut bits = 0;
        for word in list.split(';') {
            if let Some((_, b)) = Self::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(word.trim()))
            {
                bits |= b;
            }
        }
        Facts(bits)
    }

    /// "type;size;" in the order of FEAT.
    pub fn names(self) -> String {
        Self::NAMES
            .iter()
            .filter(|(_, b)| self.0 & b != 0)
            .map(|(n, _)| format!("{n};"))
            .collect()
    }

    /// The FEAT line: every fact, the selected ones starred.
    pub fn feat_line(self) -> String {
        let mut s = String::from(" MLST ");
        for (n, b) in Self::NAMES {
            s.push_str(n);
            if self.0 & b != 0 {
                s.push('*');
            }
            s.push(';');
        }
        s
    }

    fn has(self, b: u8) -> bool {
        self.0 & b != 0
    }
}

/// The `perm` fact for an entry and what the user may do (RFC 3659 section 7.5.5).
fn perm_fact(e: &Entry, p: Permissions) -> String {
    let mut s = String::new();
    if e.is_dir() {
        if p.contains(Permissions::WRITE) {
            s.push('c');
        }
        if p.contains(Permissions::DELETE) {
            s.push('d');
        }
        s.push('e');
        if p.contains(Permissions::RENAME) {
            s.push('f');
        }
        if p.contains(Permissions::LIST) {
            s.push('l');
        }
        if p.contains(Permissions::MKDIR) {
            s.push('m');
        }
        if p.contains(Permissions::DELETE) {
            s.push('p');
        }
    } else {
        if p.contains(Permissions::WRITE) {
            s.push('a');
        }
        if p.contains(Permissions::DELETE) {
            s.push('d');
        }
        if p.contains(Permissions::RENAME) {
            s.push('f');
        }
        if p.contains(Permissions::READ) {
            s.push('r');
        }
        if p.contains(Permissions::WRITE) {
            s.push('w');
        }
    }
    s
}

/// "fact=value;..." for one entry, without the space and the name.
pub fn facts(e: &Entry, selected: Facts, p: Permissions) -> String {
    let mut s = String::with_capacity(96);
    if selected.has(Facts::TYPE) {
        s.push_str(if e.is_dir() {
            "type=dir;"
        } else {
            "type=file;"
        });
    }
    if selected.has(Facts::SIZE) {
        let _ = write!(s, "size={};", e.size);
    }
    if selected.has(Facts::MODIFY) {
        let _ = write!(s, "modify={};", Utc::from_system(e.modified).timeval());
    }
    if selected.has(Facts::PERM) {
        let _ = write!(s, "perm={};", perm_fact(e, p));
    }
    if selected.has(Facts::UNIQUE) {
        // The fact value may not hold ';', ' ' or '='; store tags are plain tokens, but keep
        // the syntax safe whatever a backend returns.
        let tag: String = e
            .tag
            .chars()
            .filter(|c| c.is_ascii_graphic() && !matches!(c, ';' | '='))
            .collect();
        let _ = write!(s, "unique={tag};");
    }
    s
}

/// One MLSD line: facts, one space, the name (RFC 3659 section 7.2).
pub fn mlsd_line(e: &Entry, selected: Facts, p: Permissions) -> String {
    let mut s = facts(e, selected, p);
    s.push(' ');
    s.push_str(&e.name);
    s
}

/// Joins lines with CR LF (the line end of listings on the wire).
pub fn join_crlf<I: IntoIterator<Item = String>>(lines: I) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use filegate_core::Kind;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn entry(name: &str, kind: Kind, size: u64, modified: SystemTime) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size,
            modified,
            tag: "t1a".into(),
            digest: None,
        }
    }

    #[test]
    fn calendar() {
        let cases = [
            (0, (1970, 1, 1, 0, 0, 0)),
            (951_782_400, (2000, 2, 29, 0, 0, 0)),
            (1_709_210_096, (2024, 2, 29, 12, 34, 56)),
            (1_798_761_599, (2026, 12, 31, 23, 59, 59)),
            (4_107_542_400, (2100, 3, 1, 0, 0, 0)),
        ];
        for (secs, (y, mo, d, h, mi, s)) in cases {
            let t = Utc::from_system(at(secs));
            assert_eq!(
                (t.year, t.month, t.day, t.hour, t.minute, t.second),
                (y, mo, d, h, mi, s),
                "{secs}"
            );
        }
        assert_eq!(
            Utc::from_system(at(1_709_210_096)).timeval(),
            "20240229123456"
        );
        let before = Utc::from_system(UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!((before.year, before.second, before.millis), (1969, 58, 500));
    }

    #[test]
    fn ls_lines() {
        let now = at(1_709_210_096);
        let recent = entry("a b.txt", Kind::File, 1234, at(1_709_210_096 - 3600));
        assert_eq!(
            list_line(&recent, now),
            "-rw-r--r-- 1 ftp ftp          1234 Feb 29 11:34 a b.txt"
        );
        let old = entry("dir", Kind::Dir, 0, at(951_782_400));
        assert_eq!(
            list_line(&old, now),
            "drwxr-xr-x 1 ftp ftp             0 Feb 29  2000 dir"
        );
    }

    #[test]
    fn mlsd_facts_syntax() {
        let e = entry("f", Kind::File, 5, at(1_709_210_096));
        assert_eq!(
            mlsd_line(&e, Facts::all(), Permissions::all()),
            "type=file;size=5;modify=20240229123456;perm=adfrw;unique=t1a; f"
        );
        let d = entry("d", Kind::Dir, 0, at(0));
        assert_eq!(
            mlsd_line(
                &d,
                Facts::parse("type;perm;bogus"),
                Permissions::LIST | Permissions::READ
            ),
            "type=dir;perm=el; d"
        );
        assert_eq!(Facts::parse("TYPE;Size;").names(), "type;size;");
        assert_eq!(
            Facts::parse("size").feat_line(),
            " MLST type;size*;modify;perm;unique;"
        );
    }
}
