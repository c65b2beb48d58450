//! The five news outlets ANCHOR is built from.

use std::fmt;
use std::str::FromStr;

/// A news outlet of the ANCHOR collection.
///
/// The string form (`as_str`) is what every table stores in its `outlet`
/// column; renaming one is a schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outlet {
    /// The Guardian (theguardian.com).
    Guardian,
    /// BBC News (bbc.co.uk, bbc.com).
    Bbc,
    /// USA Today (usatoday.com).
    UsaToday,
    /// The Washington Post (washingtonpost.com).
    WashingtonPost,
    /// The New York Times (nytimes.com).
    NyTimes,
}

impl Outlet {
    /// Every outlet, in a fixed order.
    pub const ALL: [Outlet; 5] = [
        Outlet::Guardian,
        Outlet::Bbc,
        Outlet::UsaToday,
        Outlet::WashingtonPost,
        Outlet::NyTimes,
    ];

    /// The stable snake_case name stored in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outlet::Guardian => "guardian",
            Outlet::Bbc => "bbc",
            Outlet::UsaToday => "usatoday",
            Outlet::WashingtonPost => "washingtonpost",
            Outlet::NyTimes => "nytimes",
        }
    }

    /// The outlet's name as people write it.
    pub fn display_name(self) -> &'static str {
        match self {
            Outlet::Guardian => "The Guardian",
            Outlet::Bbc => "BBC News",
            Outlet::UsaToday => "USA Today",
            Outlet::WashingtonPost => "The Washington Post",
            Outlet::NyTimes => "The New York Times",
        }
    }
}

impl fmt::Display for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no outlet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown outlet {0:?} (expected one of guardian, bbc, usatoday, washingtonpost, nytimes)")]
pub struct UnknownOutlet(pub String);

impl FromStr for Outlet {
    type Err = UnknownOutlet;

    /// Accepts the stored names plus the spellings found in VisualNews and
    /// NYTimes800k metadata (`usa_today`, `washington_post`, `nyt`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let outlet = match key.as_str() {
            "guardian" | "theguardian" => Outlet::Guardian,
            "bbc" | "bbcnews" => Outlet::Bbc,
            "usatoday" => Outlet::UsaToday,
            "washingtonpost" | "thewashingtonpost" | "wapo" => Outlet::WashingtonPost,
            "nytimes" | "nyt" | "newyorktimes" | "thenewyorktimes" => Outlet::NyTimes,
            _ => return Err(UnknownOutlet(s.to_owned())),
        };
        Ok(outlet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_accepts_collection_spellings() {
        for outlet in Outlet::ALL {
            assert_eq!(outlet.as_str().parse::<Outlet>(), Ok(outlet));
        }
        assert_eq!("usa_today".parse::<Outlet>(), Ok(Outlet::UsaToday));
        assert_eq!(
            "washington_post".parse::<Outlet>(),
            Ok(Outlet::WashingtonPost)
        );
        assert_eq!("The Guardian".parse::<Outlet>(), Ok(Outlet::Guardian));
        assert!("reuters".parse::<Outlet>().is_err());
    }
}
