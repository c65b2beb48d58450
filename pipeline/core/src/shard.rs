//! `--shard I/N`: a deterministic slice of a step's parts.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// Shard `index` of `count` (0-based). Shard I owns the parts whose index is
/// I mod N, so the set of parts never depends on N and a merge of all shards
/// equals the unsharded output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// The whole job in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `index < count` and `count >= 1`.
    pub fn new(index: usize, count: usize) -> Result<Self, Error> {
        if count == 0 || index >= count {
            return Err(Error::Config(format!(
                "shard {index}/{count}: need 0 <= I < N and N >= 1"
            )));
        }
        Ok(Shard { index, count })
    }

    /// 0-based shard index.
    pub fn index(self) -> usize {
        self.index
    }

    /// Number of shards.
    pub fn count(self) -> usize {
        self.count
    }

    /// True when this process runs every part.
    pub fn is_all(self) -> bool {
        self.count == 1
    }

    /// Whether this shard runs part `part`.
    pub fn owns(self, part: usize) -> bool {
        part % self.count == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::Config(format!("--shard {s:?}: expected I/N, e.g. 0/4"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_parts() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        for part in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(part)).count(), 1);
        }
        assert!(Shard::ALL.owns(7));
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} should be rejected");
        }
    }
}
