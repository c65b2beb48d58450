//! Property test: no adapter panics on arbitrary or mutated HTML, and whatever comes out
//! keeps the output's invariants (absolute URLs, non-empty captions, positions in order,
//! at most one lead). Bounded: `PROPTEST_CASES` (default 256 per property) sets the run.

use anchor_extract::{Outlet, extract};
use proptest::prelude::*;

/// Pieces of real outlet markup, recombined and cut at random points.
const PIECES: &[&str] = &[
    "<figure itemprop=\"associatedMedia image\" class=\"media-primary\">",
    "<figure>",
    "</figure>",
    "<figcaption>",
    "</figcaption>",
    "<picture><source srcset=\"a.jpg 1x, b.jpg 2x\" media=\"(min-width: 1px)\">",
    "</picture>",
    "<img src=\"/x.jpg\" srcset=\"/x-320.jpg 320w, /x-1024.jpg 1024w\" alt=\"A photo\">",
    "<img data-src=\"//cdn.example.com/y.jpg\">",
    "<img src=\"data:image/gif;base64,R0lGOD\">",
    "<div class=\"js-delayed-image-load\" data-src=\"https://ichef.bbci.co.uk/news/320/a.jpg\" data-alt=\"alt\"></div>",
    "<span class=\"story-image-copyright\">Getty Images</span>",
    "<span class=\"media-caption__text\">Caption text</span>",
    "<span class=\"caption-text\">A caption.</span><span class=\"credit\" itemprop=\"copyrightHolder\"><span class=\"visually-hidden\">Credit</span> Jane Doe/Reuters</span>",
    "<div class=\"wp-volt-gal-slide wp-volt-gal-photo\" data-image=\"https://img.example/g.jpg\" data-caption=\"Slide\" data-credit=\"AP\"></div>",
    "<div class=\"inline-photo\"><img data-hi-res-src=\"https://img.example/h.jpg\"><span class=\"pb-caption\">Text (AP Photo/X)</span></div>",
    "<p class=\"image-credit-wrap\"><span class=\"cutline\">Cut</span><span class=\"credit\">(Photo: X)</span></p>",
    "<script type=\"application/ld+json\">{\"@type\":\"NewsArticle\",\"headline\":\"H\",\"image\":[{\"@type\":\"ImageObject\",\"url\":\"/i.jpg\",\"caption\":\"C\"}]}</script>",
    "<script type=\"application/ld+json\">{\"@graph\":[[[{\"@type\":",
    "<meta property=\"og:image\" content=\"/x-1024.jpg\">",
    "<link rel=\"canonical\" href=\"::not a url::\">",
    "Photograph: ",
    "(AP Photo/",
    "Credit",
    "Image source, ",
    ")",
    "(",
    "<gu-island name=\"YoutubeBlockComponent\"></gu-island>",
    "<header>",
    "</header>",
    "<![CDATA[",
    "<!--",
    "\u{0}",
    "ü…—’",
];

fn piece_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(PIECES).prop_map(str::to_string),
            ".{0,12}",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

fn outlet() -> impl Strategy<Value = Option<Outlet>> {
    prop_oneof![
        Just(None),
        prop::sample::select(Outlet::ALL.to_vec()).prop_map(Some)
    ]
}

fn check(outlet: Option<Outlet>, html: &str) -> Result<(), TestCaseError> {
    let url = url::Url::parse("https://www.example.com/news/story").expect("valid url");
    let ex = extract(outlet, &url, html);
    let mut leads = 0;
    for (i, img) in ex.images.iter().enumerate() {
        prop_assert!(img.image_url.starts_with("http"), "{img:?}");
        prop_assert!(!img.caption.is_empty(), "{img:?}");
        prop_assert_eq!(img.position as usize, i);
        leads += usize::from(img.is_lead);
        let line = anchor_extract::to_json_line(img);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok());
    }
    prop_assert!(leads <= 1);
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(outlet in outlet(), html in ".{0,400}") {
        check(outlet, &html)?;
    }

    #[test]
    fn recombined_markup_never_panics(outlet in outlet(), html in piece_soup()) {
        check(outlet, &html)?;
    }

    #[test]
    fn credit_splitting_never_panics(s in ".{0,80}") {
        let (caption, credit) = anchor_extract::credit::split_credit(&s);
        prop_assert!(caption.len() <= s.len() + 1);
        if let Some(c) = credit {
            prop_assert!(!c.is_empty());
        }
    }

    #[test]
    fn srcset_parsing_never_panics(s in "[ -~,\u{a0}ü]{0,80}") {
        let _ = anchor_extract::srcset::largest(&s);
    }
}
