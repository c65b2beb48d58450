//! Near-duplicate search over 64-bit perceptual hashes, clustering and keeper choice.
//!
//! **Search**: multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space
//! with Multi-Index Hashing", CVPR 2012). The 64 bits are cut into `m` disjoint chunks; by
//! pigeonhole, two hashes within Hamming distance `r` agree to within `floor(r / m)` bits on at
//! least one chunk. Each chunk has its own table (dense when the chunk has at most 20 bits);
//! a query probes every chunk value within that small radius and verifies candidates on the
//! full 64 bits. A pair is reported only from the first chunk that could find it, so the
//! output needs no set to deduplicate. Cost is about `n * m * probes * bucket size`, far
//! below the `n^2 / 2` of all pairs for the 70K hashes of a dataset.
//!
//! **Clusters**: union-find over the matched pairs (transitively, so a chain a~b~c is one
//! cluster even when a and c are farther than `r` apart).
//!
//! **Keepers**: in each cluster the member with the most pixels is kept, ties broken by the
//! earliest publication time (unknown last), then by the smallest stable id. Every other
//! member gets `dup_of = keeper`.

/// Default Hamming radius for pHash near-duplicates.
///
/// 10 of 64 bits, a common pHash choice; on the demo source `anchor curate` writes precision
/// and recall at every radius to `calibration.md` for re-tuning it on your own data.
pub const DEFAULT_RADIUS: u32 = 10;

/// A multi-index over a fixed set of 64-bit hashes.
#[derive(Debug, Clone)]
pub struct MultiIndex {
    hashes: Vec<u64>,
    chunks: Vec<Chunk>,
}

#[derive(Debug, Clone)]
struct Chunk {
    shift: u32,
    bits: u32,
    table: Table,
}

#[derive(Debug, Clone)]
enum Table {
    /// CSR layout: ids of chunk value `v` are `ids[offsets[v]..offsets[v + 1]]`.
    Dense { offsets: Vec<u32>, ids: Vec<u32> },
    /// `(value, id)` sorted, for chunks too wide for a dense table.
    Sorted(Vec<(u64, u32)>),
}

impl Chunk {
    #[inline]
    fn value(&self, h: u64) -> u64 {
        (h >> self.shift) & mask(self.bits)
    }

    fn for_each_id(&self, value: u64, mut f: impl FnMut(u32)) {
        match &self.table {
            Table::Dense { offsets, ids } => {
                let v = value as usize;
                for &id in &ids[offsets[v] as usize..offsets[v + 1] as usize] {
                    f(id);
                }
            }
            Table::Sorted(pairs) => {
                let start = pairs.partition_point(|&(k, _)| k < value);
                for &(_, id) in pairs[start..].iter().take_while(|&&(k, _)| k == value) {
                    f(id);
                }
            }
        }
    }
}

#[inline]
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Calls `f` with every `bits`-wide value within Hamming distance `radius` of `value`.
fn for_each_neighbour(value: u64, bits: u32, radius: u32, f: &mut impl FnMut(u64)) {
    fn rec(v: u64, from: u32, bits: u32, left: u32, f: &mut impl FnMut(u64)) {
        f(v);
        if left == 0 {
            return;
        }
        for b in from..bits {
            rec(v ^ (1u64 << b), b + 1, bits, left - 1, f);
        }
    }
    rec(value, 0, bits, radius.min(bits), f);
}

impl MultiIndex {
    /// Builds an index with `m` chunks (clamped to 1..=64). Pick `m` so that a chunk has
    /// about `log2(n)` bits: [`MultiIndex::chunks_for`] does that.
    pub fn new(hashes: Vec<u64>, m: u32) -> MultiIndex {
        let m = m.clamp(1, 64);
        let n = hashes.len();
        let mut chunks = Vec::with_capacity(m as usize);
        let mut shift = 0;
        for i in 0..m {
            // Spread 64 bits as evenly as possible: the first `64 % m` chunks get one more.
            let bits = 64 / m + u32::from(i < 64 % m);
            let values: Vec<u64> = hashes.iter().map(|&h| (h >> shift) & mask(bits)).collect();
            let table = if bits <= 20 {
                let mut offsets = vec![0u32; (1usize << bits) + 1];
                for &v in &values {
                    offsets[v as usize + 1] += 1;
                }
                for i in 1..offsets.len() {
                    offsets[i] += offsets[i - 1];
                }
                let mut fill = offsets.clone();
                let mut ids = vec![0u32; n];
                for (id, &v) in values.iter().enumerate() {
                    ids[fill[v as usize] as usize] = id as u32;
                    fill[v as usize] += 1;
                }
                Table::Dense { offsets, ids }
            } else {
                let mut pairs: Vec<(u64, u32)> = values
                    .iter()
                    .enumerate()
                    .map(|(id, &v)| (v, id as u32))
                    .collect();
                pairs.sort_unstable();
                Table::Sorted(pairs)
            };
            chunks.push(Chunk { shift, bits, table });
            shift += bits;
        }
        MultiIndex { hashes, chunks }
    }

    /// A chunk count that gives chunks of about `log2(n)` bits (at least 4 chunks).
    pub fn chunks_for(n: usize) -> u32 {
        let log2n = (usize::BITS - n.max(2).leading_zeros()).max(8);
        (64 / log2n).max(4)
    }

    /// The indexed hashes.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// Every pair `(i, j, distance)` with `i < j` and `distance <= radius`, sorted.
    ///
    /// When the radius is so large for the chunking that probing would cost more than a
    /// scan (`sum_{k <= r/m} C(bits, k) > n`), this falls back to comparing all pairs, which
    /// is still exact.
    pub fn pairs_within(&self, radius: u32) -> Vec<(u32, u32, u32)> {
        let m = self.chunks.len() as u32;
        let sub = radius / m;
        let n = self.hashes.len() as u64;
        if self.chunks.iter().any(|c| probes(c.bits, sub) > n.max(64)) {
            return self.scan(radius);
        }
        let mut out = Vec::new();
        for (i, &h) in self.hashes.iter().enumerate() {
            let i = i as u32;
            for (c, chunk) in self.chunks.iter().enumerate() {
                let v = chunk.value(h);
                for_each_neighbour(v, chunk.bits, sub, &mut |probe| {
                    chunk.for_each_id(probe, |j| {
                        if j <= i {
                            return;
                        }
                        let other = self.hashes[j as usize];
                        let d = (h ^ other).count_ones();
                        if d > radius {
                            return;
                        }
                        // Report from the first chunk that finds this pair only.
                        let earlier = self.chunks[..c]
                            .iter()
                            .any(|e| (e.value(h) ^ e.value(other)).count_ones() <= sub);
                        if !earlier {
                            out.push((i, j, d));
                        }
                    });
                });
            }
        }
        out.sort_unstable();
        out
    }

    /// All pairs by direct comparison: the exact fallback.
    fn scan(&self, radius: u32) -> Vec<(u32, u32, u32)> {
        let mut out = Vec::new();
        for (i, &a) in self.hashes.iter().enumerate() {
            for (j, &b) in self.hashes.iter().enumerate().skip(i + 1) {
                let d = (a ^ b).count_ones();
                if d <= radius {
                    out.push((i as u32, j as u32, d));
                }
            }
        }
        out
    }
}

/// `sum_{k <= radius} C(bits, k)`, saturating.
fn probes(bits: u32, radius: u32) -> u64 {
    let mut total = 0u64;
    let mut c = 1u64; // C(bits, 0)
    for k in 0..=radius.min(bits) {
        total = total.saturating_add(c);
        c = c.saturating_mul(u64::from(bits - k)) / u64::from(k + 1);
    }
    total
}

/// Disjoint-set forest with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    /// Merges the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a as usize] < self.size[b as usize] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b as usize] = a;
        self.size[a as usize] += self.size[b as usize];
    }
}

/// What the keeper rule needs to know about one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Stable pair id (the last tie-break: smallest wins).
    pub id: String,
    /// `width * height` of the decoded image (most wins).
    pub pixels: u64,
    /// Publication time, e.g. Unix seconds (earliest wins; `None` loses to any time).
    pub published_at: Option<i64>,
}

/// One row's cluster outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAssignment {
    /// Index (into the input) of the cluster's keeper; a stable cluster key.
    pub cluster: u32,
    /// Number of members in the cluster.
    pub cluster_size: u32,
    /// `None` for the keeper, `Some(keeper index)` for every other member.
    pub dup_of: Option<u32>,
}

fn better(a: &Candidate, b: &Candidate) -> bool {
    use std::cmp::Ordering::*;
    match a.pixels.cmp(&b.pixels) {
        Greater => return true,
        Less => return false,
        Equal => {}
    }
    match (a.published_at, b.published_at) {
        (Some(x), Some(y)) if x != y => return x < y,
        (Some(_), None) => return true,
        (None, Some(_)) => return false,
        _ => {}
    }
    a.id < b.id
}

/// Index of the best candidate by the keeper rule (most pixels, earliest publication,
/// smallest id); `None` when empty.
pub fn best(candidates: &[Candidate]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        if best.is_none_or(|b| better(c, &candidates[b])) {
            best = Some(i);
        }
    }
    best
}

/// Groups `candidates` by the matched `pairs` (indices into `candidates`) and picks keepers.
///
/// Pairs with an index out of range are ignored. Singletons are their own keepers.
pub fn cluster(candidates: &[Candidate], pairs: &[(u32, u32)]) -> Vec<ClusterAssignment> {
    let n = candidates.len();
    let mut uf = UnionFind::new(n);
    for &(a, b) in pairs {
        if (a as usize) < n && (b as usize) < n {
            uf.union(a, b);
        }
    }
    let roots: Vec<u32> = (0..n as u32).map(|i| uf.find(i)).collect();
    let mut keeper: Vec<u32> = (0..n as u32).collect();
    let mut size = vec![0u32; n];
    for (i, &r) in roots.iter().enumerate() {
        size[r as usize] += 1;
        let k = keeper[r as usize] as usize;
        if better(&candidates[i], &candidates[k]) {
            keeper[r as usize] = i as u32;
        }
    }
    roots
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            let k = keeper[r as usize];
            ClusterAssignment {
                cluster: k,
                cluster_size: size[r as usize],
                dup_of: (k != i as u32).then_some(k),
            }
        })
        .collect()
}

/// Groups rows with identical keys (e.g. SHA-256 hex) and picks keepers by the same rule.
pub fn exact_clusters<K: Ord>(keys: &[K], candidates: &[Candidate]) -> Vec<ClusterAssignment> {
    let mut order: Vec<u32> = (0..keys.len().min(candidates.len()) as u32).collect();
    order.sort_by(|&a, &b| keys[a as usize].cmp(&keys[b as usize]).then(a.cmp(&b)));
    let pairs: Vec<(u32, u32)> = order
        .windows(2)
        .filter(|w| keys[w[0] as usize] == keys[w[1] as usize])
        .map(|w| (w[0], w[1]))
        .collect();
    cluster(&candidates[..order.len()], &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic test data without a rand dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    fn brute(hashes: &[u64], r: u32) -> Vec<(u32, u32, u32)> {
        let mut out = Vec::new();
        for i in 0..hashes.len() {
            for j in i + 1..hashes.len() {
                let d = (hashes[i] ^ hashes[j]).count_ones();
                if d <= r {
                    out.push((i as u32, j as u32, d));
                }
            }
        }
        out
    }

    /// Random hashes plus planted near-copies (0..=14 bit flips) so every radius has hits.
    fn planted(n: usize, seed: u64) -> Vec<u64> {
        let mut rng = Rng(seed);
        let mut v: Vec<u64> = Vec::with_capacity(n);
        while v.len() < n {
            if v.is_empty() || !rng.next().is_multiple_of(3) {
                v.push(rng.next());
            } else {
                let base = v[(rng.next() % v.len() as u64) as usize];
                let flips = rng.next() % 15;
                let mut h = base;
                for _ in 0..flips {
                    h ^= 1u64 << (rng.next() % 64);
                }
                v.push(h);
            }
        }
        v
    }

    #[test]
    fn matches_brute_force_for_many_radii_and_chunkings() {
        let hashes = planted(1500, 0x9E37_79B9_7F4A_7C15);
        for m in [1, 2, 3, 4, 5, 7, 8] {
            let index = MultiIndex::new(hashes.clone(), m);
            for r in [0, 1, 3, 6, 8, 10, 12] {
                let want = brute(&hashes, r);
                let got = index.pairs_within(r);
                assert_eq!(got, want, "m={m} r={r}");
            }
        }
        // The planted copies guarantee the comparison is not vacuous.
        assert!(brute(&hashes, 6).len() > 100);
    }

    #[test]
    fn probe_counts() {
        assert_eq!(probes(16, 0), 1);
        assert_eq!(probes(16, 2), 1 + 16 + 120);
        assert!(probes(64, 32) > 1 << 60);
    }

    #[test]
    fn exact_copies_and_empty_input() {
        let index = MultiIndex::new(vec![5, 5, 5, 7], 4);
        assert_eq!(index.pairs_within(0), vec![(0, 1, 0), (0, 2, 0), (1, 2, 0)]);
        assert!(MultiIndex::new(Vec::new(), 4).pairs_within(10).is_empty());
    }

    #[test]
    fn chunk_count_grows_with_n() {
        assert_eq!(MultiIndex::chunks_for(10), 8);
        assert_eq!(MultiIndex::chunks_for(70_000), 4);
    }

    fn cand(id: &str, pixels: u64, published_at: Option<i64>) -> Candidate {
        Candidate {
            id: id.to_string(),
            pixels,
            published_at,
        }
    }

    #[test]
    fn keeper_rule_resolution_then_date_then_id() {
        let c = vec![
            cand("b", 100, Some(5)), // 0
            cand("a", 200, Some(9)), // 1: most pixels -> keeper of {0,1,2}
            cand("c", 50, Some(1)),  // 2
            cand("z", 10, Some(3)),  // 3: same pixels, earlier date -> keeper of {3,4}
            cand("y", 10, Some(4)),  // 4
            cand("q", 10, None),     // 5: ties on pixels, no date loses to dated 6
            cand("r", 10, Some(8)),  // 6
            cand("n", 10, None),     // 7: full tie with 8 -> smallest id "m"
            cand("m", 10, None),     // 8
            cand("solo", 1, None),   // 9
        ];
        let out = cluster(&c, &[(0, 1), (2, 1), (4, 3), (5, 6), (7, 8)]);
        let dup: Vec<Option<u32>> = out.iter().map(|a| a.dup_of).collect();
        assert_eq!(
            dup,
            vec![
                Some(1),
                None,
                Some(1),
                None,
                Some(3),
                Some(6),
                None,
                Some(8),
                None,
                None
            ]
        );
        assert_eq!(out[0].cluster, 1);
        assert_eq!(out[2].cluster_size, 3);
        assert_eq!(out[9].cluster_size, 1);
    }

    #[test]
    fn clusters_are_transitive() {
        let c: Vec<Candidate> = (0..4).map(|i| cand(&format!("{i}"), 1, None)).collect();
        let out = cluster(&c, &[(0, 1), (1, 2)]);
        assert_eq!(out[0].cluster, out[2].cluster);
        assert_ne!(out[3].cluster, out[0].cluster);
    }

    #[test]
    fn exact_clusters_group_equal_keys() {
        let keys = ["x", "y", "x", "x"];
        let c = vec![
            cand("d", 1, None),
            cand("c", 1, None),
            cand("b", 1, None),
            cand("a", 9, None),
        ];
        let out = exact_clusters(&keys, &c);
        let dup: Vec<Option<u32>> = out.iter().map(|a| a.dup_of).collect();
        assert_eq!(dup, vec![Some(3), None, Some(3), None]);
    }
}
