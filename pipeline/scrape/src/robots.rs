//! robots.txt: parsing and matching (RFC 9309), plus the non-standard
//! `Crawl-delay` that many news sites set.
//!
//! The group for our product token is used when present, else the `*` group.
//! Among matching rules the longest pattern wins and `Allow` wins a tie, as
//! RFC 9309 section 2.2.2 says; `*` and a trailing `$` are supported.

use std::time::Duration;

/// One `Allow`/`Disallow` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    pattern: String,
}

/// The rules that apply to our user agent on one host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    rules: Vec<Rule>,
    /// `Crawl-delay` of the selected group, if any.
    pub crawl_delay: Option<Duration>,
}

#[derive(Default)]
struct Group {
    agents: Vec<String>,
    rules: Vec<Rule>,
    crawl_delay: Option<Duration>,
}

impl Robots {
    /// Everything allowed (robots.txt missing: 4xx, per RFC 9309).
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// Everything disallowed (robots.txt unreachable: 5xx, per RFC 9309).
    pub fn disallow_all() -> Robots {
        Robots {
            rules: vec![Rule {
                allow: false,
                pattern: "/".to_owned(),
            }],
            crawl_delay: None,
        }
    }

    /// Parses `text` for the agent whose product token is `agent` (matched
    /// case-insensitively).
    pub fn parse(text: &str, agent: &str) -> Robots {
        let agent = agent.to_ascii_lowercase();
        let mut groups: Vec<Group> = Vec::new();
        let mut current = Group::default();
        let mut last_was_agent = false;
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if !last_was_agent && !current.agents.is_empty() {
                        groups.push(std::mem::take(&mut current));
                    }
                    current.agents.push(value.to_ascii_lowercase());
                    last_was_agent = true;
                }
                "allow" | "disallow" => {
                    last_was_agent = false;
                    // An empty Disallow allows everything: it adds no rule.
                    if !value.is_empty() {
                        current.rules.push(Rule {
                            allow: key == "allow",
                            pattern: value.to_owned(),
                        });
                    }
                }
                "crawl-delay" => {
                    last_was_agent = false;
                    if let Ok(secs) = value.parse::<f64>()
                        && secs.is_finite()
                        && secs >= 0.0
                    {
                        // Cap absurd values: a site asking for an hour per
                        // request is effectively asking not to be crawled.
                        current.crawl_delay = Some(Duration::from_secs_f64(secs.min(3600.0)));
                    }
                }
                _ => {}
            }
        }
        if !current.agents.is_empty() {
            groups.push(current);
        }
        let pick = |want: &dyn Fn(&str) -> bool| -> Option<Robots> {
            let mut found: Option<Robots> = None;
            for g in groups.iter().filter(|g| g.agents.iter().any(|a| want(a))) {
                let r = found.get_or_insert_with(Robots::default);
                r.rules.extend(g.rules.iter().cloned());
                r.crawl_delay = r.crawl_delay.or(g.crawl_delay);
            }
            found
        };
        pick(&|a: &str| a != "*" && agent.starts_with(a))
            .or_else(|| pick(&|a: &str| a == "*"))
            .unwrap_or_default()
    }

    /// Whether `path_and_query` (e.g. `/a/b?x=1`) may be fetched.
    pub fn allowed(&self, path_and_query: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for rule in &self.rules {
            if pattern_matches(&rule.pattern, path_and_query) {
                let len = rule.pattern.len();
                best = match best {
                    Some((l, a)) if l > len || (l == len && a) => Some((l, a)),
                    _ => Some((len, rule.allow)),
                };
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// Matches a robots pattern (`*` wildcard, `$` end anchor) against a path.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let pieces: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0usize;
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(piece) {
                return false;
            }
            pos = piece.len();
        } else if i == pieces.len() - 1 && anchored {
            // The last piece must sit at the very end.
            return path.len() >= pos + piece.len() && path.ends_with(piece);
        } else {
            match path[pos..].find(piece) {
                Some(at) => pos += at + piece.len(),
                None => return false,
            }
        }
    }
    !anchored || pos == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &str = "\
User-agent: *
Disallow: /private/
Allow: /private/open$
Crawl-delay: 2

User-agent: anchor-scrape
User-agent: other
Disallow: /no-anchor
Allow: /no-anchor/yes
Crawl-delay: 0.5
";

    #[test]
    fn picks_our_group_and_longest_match() {
        let r = Robots::parse(TXT, "anchor-scrape");
        assert_eq!(r.crawl_delay, Some(Duration::from_millis(500)));
        assert!(!r.allowed("/no-anchor/x"));
        assert!(r.allowed("/no-anchor/yes/1"));
        // Our group does not mention /private/, so it is allowed for us.
        assert!(r.allowed("/private/x"));
    }

    #[test]
    fn star_group_with_anchor_and_wildcard() {
        let r = Robots::parse(TXT, "SomeBot");
        assert_eq!(r.crawl_delay, Some(Duration::from_secs(2)));
        assert!(!r.allowed("/private/x"));
        assert!(r.allowed("/private/open"));
        assert!(!r.allowed("/private/open/more"));
        assert!(r.allowed("/public"));
        let w = Robots::parse("User-agent: *\nDisallow: /*.gif$\n", "x");
        assert!(!w.allowed("/a/b.gif"));
        assert!(w.allowed("/a/b.gif?x"));
        assert!(!Robots::disallow_all().allowed("/"));
        assert!(Robots::allow_all().allowed("/anything"));
    }
}
