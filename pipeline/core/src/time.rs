//! Publication times as the pages state them (RFC 3339), turned into Unix seconds for
//! ordering (keeper choice, oldest-member rules, temporal splits).

/// Unix seconds of an RFC 3339 timestamp (`2024-05-01T12:00:00Z`, `...+01:00`, fractional
/// seconds allowed); `None` when it does not parse.
pub fn unix_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" {
        return None;
    }
    let (h, mi, sec) = if s.len() >= 19 && matches!(s.get(10..11)?, "T" | "t" | " ") {
        (num(11..13)?, num(14..16)?, num(17..19)?)
    } else {
        (0, 0, 0)
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let rest = s.get(19.min(s.len())..).unwrap_or("");
    let rest = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest.chars().next() {
        None | Some('Z') | Some('z') => 0,
        Some(sign @ ('+' | '-')) => {
            let oh = rest.get(1..3)?.parse::<i64>().ok()?;
            let om = rest
                .get(4..6)
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0);
            let o = oh * 3600 + om * 60;
            if sign == '+' { o } else { -o }
        }
        Some(_) => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_to_unix_seconds() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(
            unix_seconds("2024-05-01T13:00:00+01:00"),
            Some(1_714_564_800)
        );
        assert_eq!(
            unix_seconds("2024-05-01T12:00:00.250Z"),
            Some(1_714_564_800)
        );
        assert_eq!(unix_seconds("2024-05-01"), Some(1_714_521_600));
        assert_eq!(unix_seconds("May 1, 2024"), None);
        assert_eq!(unix_seconds("2024-13-01T00:00:00Z"), None);
    }
}
