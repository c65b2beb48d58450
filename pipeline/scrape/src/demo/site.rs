//! The demo site's plan: which articles exist, which images they carry, which
//! fault each URL serves and what every URL must end as (the ground truth).
//!
//! Everything is a pure function of the article count, so two runs (or a run
//! and its resumption after `kill -9`) see the same site.

use anchor_core::Outlet;
use url::Url;

use super::faults::{
    ARTICLE_FAULTS, ArticleFault, CAPTION_FAULTS, CaptionFault, Expected, IMAGE_FAULTS, ImageFault,
};
use super::photos::{SplitMix, Variant};

/// The host name the demo gives an outlet (mapped to 127.0.0.1 by the
/// fetcher's DNS overrides; `.test` is reserved and never resolves).
pub fn demo_host(outlet: Outlet) -> String {
    format!("{}.demo.test", outlet.as_str())
}

/// What an image URL serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePlan {
    /// Canonical image URL (as the page links it).
    pub url: Url,
    /// The fault it serves.
    pub fault: ImageFault,
    /// The caption fault of its figure.
    pub caption_fault: CaptionFault,
    /// Caption text.
    pub caption: String,
    /// Photo credit.
    pub credit: String,
    /// Alt text.
    pub alt: String,
    /// Base photo id in the library.
    pub photo: usize,
    /// How the bytes derive from the base photo.
    pub variant: Variant,
    /// For near-duplicates: the image URL this one derives from, and how.
    pub derived_from: Option<(Url, &'static str)>,
}

/// One article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticlePlan {
    /// Index in the site.
    pub index: usize,
    /// Outlet.
    pub outlet: Outlet,
    /// The URL listed in the source (may redirect).
    pub url: Url,
    /// The canonical URL the page declares.
    pub canonical: Url,
    /// The page fault.
    pub fault: ArticleFault,
    /// Headline.
    pub headline: String,
    /// Section.
    pub section: &'static str,
    /// RFC 3339 publication time.
    pub published_at: String,
    /// Authors.
    pub authors: Vec<String>,
    /// Body paragraphs.
    pub paragraphs: Vec<String>,
    /// Images in page order.
    pub images: Vec<ImagePlan>,
}

/// The whole site.
#[derive(Debug, Clone)]
pub struct SitePlan {
    /// Articles, by index.
    pub articles: Vec<ArticlePlan>,
}

const PEOPLE: &[&str] = &[
    "Chancellor Angela Merkel",
    "President Emmanuel Macron",
    "Prime Minister Justin Trudeau",
    "Senator Elizabeth Warren",
    "Mayor Sadiq Khan",
    "Serena Williams",
    "Lionel Messi",
    "Secretary-General António Guterres",
    "Governor Gavin Newsom",
    "Pope Francis",
    "Greta Thunberg",
    "Tim Cook",
];
const ACTIONS: &[&str] = &[
    "arrives for talks in",
    "speaks to reporters in",
    "greets supporters in",
    "visits a flooded district of",
    "leaves a summit in",
    "attends a memorial service in",
    "tours a factory outside",
    "addresses a rally in",
];
const PLACES: &[&str] = &[
    "Brussels",
    "Berlin",
    "Ottawa",
    "Boston",
    "London",
    "Paris",
    "Madrid",
    "Nairobi",
    "Sacramento",
    "Rome",
    "Stockholm",
    "Cupertino",
    "Valencia",
    "Kyiv",
    "Tokyo",
];
/// Captions that name no entity, so the demo has a Non-Entity subset (ANCHOR keeps the two
/// apart); every third image gets one.
const SCENES: &[&str] = &[
    "Firefighters spray water on a burning warehouse at dusk.",
    "A farmer inspects drought-damaged maize in a dry field.",
    "Commuters wait on a crowded platform during a rail strike.",
    "Volunteers fill sandbags as floodwaters rise along the river.",
    "A child plays in a fountain during a summer heatwave.",
    "Protesters hold placards outside a courthouse.",
    "Rescue workers search through rubble after an earthquake.",
    "A cyclist rides past a row of shuttered shops.",
    "Students celebrate their exam results in a school hall.",
    "Shoppers queue outside a bakery before dawn.",
];
const SECTIONS: &[&str] = &[
    "world", "politics", "business", "sport", "science", "climate",
];
const AUTHORS: &[&str] = &[
    "Jane Doe",
    "John Smith",
    "Amara Okafor",
    "Li Wei",
    "Sofia García",
    "Tom Becker",
    "Priya Patel",
];
const AGENCIES: &[&str] = &["Reuters", "AP", "AFP", "Getty Images", "EPA", "PA"];

fn pick<'a>(rng: &mut SplitMix, items: &[&'a str]) -> &'a str {
    items[(rng.next() % items.len() as u64) as usize]
}

impl SitePlan {
    /// The site with `n_articles` articles, outlets dealt round-robin.
    pub fn new(n_articles: usize) -> SitePlan {
        let mut articles = Vec::with_capacity(n_articles);
        let mut slot = 0usize;
        let mut next_photo = 0usize;
        let mut article_faults = 0usize;
        let mut image_faults = 0usize;
        let mut caption_faults = 0usize;
        let mut derivations = 0usize;
        // Clean originals seen so far (url, photo, outlet), for derivations.
        let mut originals: Vec<(Url, usize, Outlet)> = Vec::new();
        for index in 0..n_articles {
            let outlet = Outlet::ALL[index % Outlet::ALL.len()];
            let mut rng = SplitMix(index as u64 ^ 0x5EED);
            let fault = if index % 4 == 3 {
                let f = ARTICLE_FAULTS[article_faults % ARTICLE_FAULTS.len()];
                article_faults += 1;
                f
            } else {
                ArticleFault::None
            };
            let person = pick(&mut rng, PEOPLE);
            let place = pick(&mut rng, PLACES);
            let section = pick(&mut rng, SECTIONS);
            let year = 2015 + (index % 10);
            let slug = format!("{}-{}-{index}", slugify(person), slugify(place));
            let host = demo_host(outlet);
            let canonical_path = match fault {
                ArticleFault::RobotsDisallowed => format!("/private/{section}/{year}/{slug}"),
                _ => format!("/{section}/{year}/{slug}"),
            };
            let listed_path = match fault {
                ArticleFault::Redirect => format!("/r/{index}"),
                ArticleFault::RedirectLoop => format!("/loop/{index}/a"),
                _ => canonical_path.clone(),
            };
            let url = demo_url(&host, &listed_path);
            let canonical = demo_url(&host, &canonical_path);
            let headline = format!("{person} {} {place}", pick(&mut rng, ACTIONS));
            let authors = vec![pick(&mut rng, AUTHORS).to_owned()];
            let published_at = format!(
                "{year}-{:02}-{:02}T{:02}:{:02}:00Z",
                1 + index % 12,
                1 + index % 28,
                index % 24,
                (index * 7) % 60
            );
            let n_images = 2 + index % 3;
            let article_ok = fault.expected().status == "success";
            let mut images = Vec::with_capacity(n_images);
            for k in 0..n_images {
                let img_path = format!("/images/{year}/{index}/{k}.jpg");
                let mut img = ImagePlan {
                    url: demo_url(&host, &img_path),
                    fault: ImageFault::None,
                    caption_fault: CaptionFault::None,
                    caption: format!(
                        "{} {} {} on {}.",
                        pick(&mut rng, PEOPLE),
                        pick(&mut rng, ACTIONS),
                        pick(&mut rng, PLACES),
                        published_at.get(..10).unwrap_or("")
                    ),
                    credit: format!("{}/{}", pick(&mut rng, AUTHORS), pick(&mut rng, AGENCIES)),
                    alt: format!("Photo: {}", pick(&mut rng, PEOPLE)),
                    photo: 0,
                    variant: Variant::Original,
                    derived_from: None,
                };
                if (index + k) % 3 == 0 {
                    img.caption = SCENES[(index * 3 + k) % SCENES.len()].to_owned();
                }
                if article_ok && slot % 4 == 1 {
                    img.fault = IMAGE_FAULTS[image_faults % IMAGE_FAULTS.len()];
                    image_faults += 1;
                    img.photo = next_photo;
                    next_photo += 1;
                    img.url = demo_url(&host, &fault_image_path(img.fault, year, index, k));
                } else if article_ok && slot % 4 == 3 && !originals.is_empty() {
                    let variants = [
                        Variant::Crop,
                        Variant::Rescale,
                        Variant::Reencode,
                        Variant::Original,
                    ];
                    let v = variants[derivations % variants.len()];
                    derivations += 1;
                    // A wire copy (identical bytes) must come from another outlet.
                    let source = if v == Variant::Original {
                        originals.iter().rev().find(|o| o.2 != outlet).cloned()
                    } else {
                        originals.last().cloned()
                    };
                    if let Some((src_url, photo, _)) = source {
                        img.photo = photo;
                        img.variant = v;
                        let how = if v == Variant::Original {
                            "wire_copy"
                        } else {
                            v.as_str()
                        };
                        img.derived_from = Some((src_url, how));
                    } else {
                        img.photo = next_photo;
                        next_photo += 1;
                    }
                } else {
                    img.photo = next_photo;
                    next_photo += 1;
                    if article_ok && slot.is_multiple_of(16) {
                        img.caption_fault = CAPTION_FAULTS[caption_faults % CAPTION_FAULTS.len()];
                        caption_faults += 1;
                        apply_caption_fault(&mut img);
                    }
                    if article_ok && img.caption_fault == CaptionFault::None {
                        originals.push((img.url.clone(), img.photo, outlet));
                    }
                }
                if article_ok {
                    slot += 1;
                }
                images.push(img);
            }
            let paragraphs = (0..3)
                .map(|p| {
                    format!(
                        "{person} was in {place} on {} for the {} meeting, paragraph {p} of the report.",
                        published_at.get(..10).unwrap_or(""),
                        pick(&mut rng, SECTIONS)
                    )
                })
                .collect();
            articles.push(ArticlePlan {
                index,
                outlet,
                url,
                canonical,
                fault,
                headline,
                section,
                published_at,
                authors,
                paragraphs,
                images,
            });
        }
        SitePlan { articles }
    }
}

fn fault_image_path(fault: ImageFault, year: usize, index: usize, k: usize) -> String {
    match fault {
        ImageFault::RobotsDisallowed => format!("/private/images/{year}/{index}/{k}.jpg"),
        ImageFault::RedirectLoop => format!("/images/loop/{index}/{k}/a.jpg"),
        ImageFault::Redirect => format!("/images/moved/{index}/{k}.jpg"),
        ImageFault::TrackingPixel | ImageFault::DecompressionBomb => {
            format!("/images/{year}/{index}/{k}.png")
        }
        _ => format!("/images/{year}/{index}/{k}.jpg"),
    }
}

fn apply_caption_fault(img: &mut ImagePlan) {
    match img.caption_fault {
        CaptionFault::None => {}
        CaptionFault::Empty => img.caption.clear(),
        CaptionFault::NonEnglish => {
            img.caption = "Des manifestants se rassemblent devant la mairie de Lyon pour protester contre la réforme des retraites, samedi.".to_owned();
        }
        CaptionFault::OverLong => {
            let base = std::mem::take(&mut img.caption);
            while img.caption.len() < 3000 {
                img.caption.push_str(&base);
                img.caption.push(' ');
            }
            img.caption = img.caption.trim_end().to_owned();
        }
    }
}

fn demo_url(host: &str, path: &str) -> Url {
    // Host and path are built from ASCII slugs above; a failure here would
    // be a bug in this module, caught by its tests. Fall back to the host
    // root rather than panic.
    Url::parse(&format!("http://{host}{path}"))
        .or_else(|_| Url::parse(&format!("http://{host}/")))
        .unwrap_or_else(|_| Url::parse("http://invalid.demo.test/").expect("static URL parses"))
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// One row of the ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    /// The URL (article as listed, or canonical image URL).
    pub url: String,
    /// `article` or `image`.
    pub kind: &'static str,
    /// Outlet.
    pub outlet: Outlet,
    /// For images, the canonical article URL.
    pub article_url: Option<String>,
    /// The intended fault (`none` for clean URLs).
    pub fault: &'static str,
    /// Expected end.
    pub expected: Expected,
    /// For near-duplicates: the image URL it derives from.
    pub derived_from: Option<String>,
    /// For near-duplicates: `crop`, `rescale`, `reencode` or `wire_copy`.
    pub derivation: Option<&'static str>,
    /// Base photo name.
    pub photo: Option<String>,
}

impl SitePlan {
    /// The ground truth: every article URL, and every image of the articles
    /// that must succeed. `photo_name` names base photo ids.
    pub fn truth(&self, photo_name: &dyn Fn(usize) -> String) -> Vec<TruthRow> {
        let mut rows = Vec::new();
        for a in &self.articles {
            rows.push(TruthRow {
                url: a.url.to_string(),
                kind: "article",
                outlet: a.outlet,
                article_url: None,
                fault: a.fault.as_str(),
                expected: a.fault.expected(),
                derived_from: None,
                derivation: None,
                photo: None,
            });
            if a.fault.expected().status != "success" {
                continue;
            }
            for img in &a.images {
                let (fault, expected) = if img.fault != ImageFault::None {
                    (img.fault.as_str(), img.fault.expected())
                } else if img.caption_fault != CaptionFault::None {
                    (img.caption_fault.as_str(), img.caption_fault.expected())
                } else if let Some((_, how)) = &img.derived_from {
                    let reason = if *how == "wire_copy" {
                        "exact_duplicate"
                    } else {
                        "near_duplicate"
                    };
                    (
                        "near_duplicate",
                        Expected {
                            stage: "curate",
                            status: "success",
                            error_class: None,
                            drop_reason: Some(reason),
                        },
                    )
                } else {
                    ("none", ImageFault::None.expected())
                };
                rows.push(TruthRow {
                    url: img.url.to_string(),
                    kind: "image",
                    outlet: a.outlet,
                    article_url: Some(a.canonical.to_string()),
                    fault,
                    expected,
                    derived_from: img.derived_from.as_ref().map(|(u, _)| u.to_string()),
                    derivation: img.derived_from.as_ref().map(|(_, h)| *h),
                    photo: Some(photo_name(img.photo)),
                });
            }
        }
        rows.sort_by(|a, b| a.url.cmp(&b.url));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_deterministic_and_covers_every_fault() {
        let a = SitePlan::new(120);
        let b = SitePlan::new(120);
        assert_eq!(a.articles, b.articles);
        let truth = a.truth(&|i| format!("p{i}"));
        for f in ARTICLE_FAULTS {
            assert!(truth.iter().any(|r| r.fault == f.as_str()), "{f:?} missing");
        }
        for f in IMAGE_FAULTS {
            assert!(truth.iter().any(|r| r.fault == f.as_str()), "{f:?} missing");
        }
        for f in CAPTION_FAULTS {
            assert!(truth.iter().any(|r| r.fault == f.as_str()), "{f:?} missing");
        }
        for how in ["crop", "rescale", "reencode", "wire_copy"] {
            assert!(
                truth.iter().any(|r| r.derivation == Some(how)),
                "{how} missing"
            );
        }
        for o in Outlet::ALL {
            assert!(
                truth
                    .iter()
                    .any(|r| r.outlet == o && r.fault == "none" && r.kind == "image")
            );
        }
        let urls: std::collections::BTreeSet<&str> = truth.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls.len(), truth.len(), "truth URLs are unique");
    }
}
